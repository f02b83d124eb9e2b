"""Human-readable reports: timestamps, amounts, audit lines."""

from .format import audit, format_amount, format_duration, format_timestamp

__all__ = ["audit", "format_amount", "format_duration", "format_timestamp"]
