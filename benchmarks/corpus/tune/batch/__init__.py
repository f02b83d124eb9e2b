"""CPU batches on a process pool, isolated probes in child processes, helper commands."""

from .pool import BatchRunner, crunch, nap, parse_batch, summarize
from .probe import healthcheck, run_isolated, run_with_pipe

__all__ = ["BatchRunner", "crunch", "healthcheck", "nap", "parse_batch", "run_isolated",
           "run_with_pipe", "summarize"]
