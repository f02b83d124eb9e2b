"""Feature flags: a module-level registry, FLAG_* environment overrides, a flags file."""

from .flags import RemoteProvider, checkout_page, is_enabled, load_file, wait_until
from .registry import REGISTRY

__all__ = ["REGISTRY", "RemoteProvider", "checkout_page", "is_enabled", "load_file",
           "wait_until"]
