"""poolsvc: a worker-pool service, small enough to read in one sitting.

Workers are real Python processes (``adapters.RealAdapter``) or in-process test doubles
(``adapters.MockAdapter``); a pool routes calls to them, optionally keeping each session on
the worker that served it first (session affinity), with the bindings kept by a small TCP
service (``affinity``).
"""

from .adapters import MockAdapter, RealAdapter, RealWorker, WorkerGone
from .config import SETTINGS, configure
from .lifecycle import WorkerStateMachine
from .pool import PoolAlreadyStarted, WorkerPool

__all__ = [
    "SETTINGS",
    "MockAdapter",
    "PoolAlreadyStarted",
    "RealAdapter",
    "RealWorker",
    "WorkerGone",
    "WorkerPool",
    "WorkerStateMachine",
    "configure",
]
