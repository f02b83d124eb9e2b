"""A periodic job scheduler and a worker pool for one-off tasks."""

from .scheduler import Job, Scheduler, job_summary, next_run
from .workers import Report, run_all, start_pool

__all__ = ["Job", "Report", "Scheduler", "job_summary", "next_run", "run_all", "start_pool"]
