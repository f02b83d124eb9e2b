"""Batch stages on multiprocessing pools and external tools."""

from .stages import Pipeline, WorkerDied, chunk, default_workers, square, supervise
from .tools import feed_worker, run_tool, sort_lines

__all__ = ["Pipeline", "WorkerDied", "chunk", "default_workers", "feed_worker", "run_tool",
           "sort_lines", "square", "supervise"]
