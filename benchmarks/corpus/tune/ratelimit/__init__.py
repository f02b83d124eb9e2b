"""Token buckets, sliding windows and retry backoff."""

from .bucket import Refiller, TokenBucket, pacing, throttled_call, wait_for_token
from .window import SlidingWindow, backoff, parse_rate

__all__ = ["Refiller", "SlidingWindow", "TokenBucket", "backoff", "pacing", "parse_rate",
           "throttled_call", "wait_for_token"]
