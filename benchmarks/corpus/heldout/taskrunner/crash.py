"""Route exceptions of job threads to a scheduler's crash list (one hook per process)."""

from __future__ import annotations

import threading
from typing import Any

_installed_for: Any = None


def install(scheduler: Any) -> None:
    global _installed_for
    if _installed_for is not None:
        return
    previous = threading.excepthook

    def hook(args: Any) -> None:
        if args.thread is not None and args.thread.name.startswith("job-"):
            scheduler.crashes.append(args.exc_value)
            return
        previous(args)

    threading.excepthook = hook
    _installed_for = scheduler
