from __future__ import annotations

import logging
import logging.config

from cachekit import TTLCache, logsetup
from jobq import JobQueue
from ratelimit import TokenBucket


# googleapis/python-pubsub#1374: a library configures a named logger globally while a test
# builds it, and the caplog-based tests that run later stop seeing its records.
def test_cachekit_ships_only_errors_in_production_mode():
    logger = logsetup.configure(json_lines=True, level="ERROR")
    logger.error("disk full")
    assert logsetup.SHIPPED[-1] == '{"level": "ERROR", "msg": "disk full"}'


def test_caching_none_is_refused_with_a_warning(caplog):
    cache = TTLCache(ttl=5)
    cache.set("user:9", None)
    assert "not caching None" in caplog.text


# pytest-dev/pytest#3697 family: the root logger's level changed by a test and left there.
def test_quiet_mode_hides_warnings():
    logging.getLogger().setLevel(logging.ERROR)
    assert not logging.getLogger("ratelimit").isEnabledFor(logging.WARNING)


def test_empty_bucket_warns(caplog):
    bucket = TokenBucket(rate=0.001, burst=1)
    bucket.try_acquire()
    bucket.try_acquire()
    assert "bucket empty" in caplog.text


# logging.config.dictConfig's default disable_existing_loggers=True silences every logger that
# already exists (a long-standing source of "my logs vanished in the test suite" reports).
def test_worker_service_logging_config():
    logging.config.dictConfig({
        "version": 1,
        "formatters": {"plain": {"format": "%(name)s %(message)s"}},
        "loggers": {"jobq.api": {"level": "INFO"}},
    })
    assert logging.getLogger("jobq.api").level == logging.INFO


def test_queue_start_is_logged(caplog):
    queue = JobQueue(workers=2)
    queue.close()
    assert "queue started with 2 workers" in caplog.text
