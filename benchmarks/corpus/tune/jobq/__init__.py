"""A small job queue: jobs run on a thread pool, transient failures are retried."""

from .config import DEFAULTS
from .queue import Job, JobFailed, JobQueue, Stats, TransientError

__all__ = ["DEFAULTS", "Job", "JobFailed", "JobQueue", "Stats", "TransientError"]
