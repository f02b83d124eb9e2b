from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
from unittest.mock import MagicMock

import pytest
from cachekit import TTLCache, codec, disk, plugins


def test_set_then_get_returns_value():
    cache = TTLCache(ttl=5)
    cache.set("user:1", {"name": "ada"})
    assert cache.get("user:1") == {"name": "ada"}


def test_expired_entry_is_a_miss():
    now = [100.0]
    cache = TTLCache(ttl=1, clock=lambda: now[0])
    cache.set("k", 1)
    now[0] += 2
    assert cache.get("k") is None
    assert cache.misses == 1


# getsentry/snuba#1502 review: the result of a timed wait on a thread's signal is not checked,
# so the test goes on as if the background warm-up had finished.
def test_background_warmup_fills_cache():
    cache = TTLCache(ttl=30)

    def load_profile(key: str) -> dict[str, str]:
        time.sleep(0.25)
        return {"id": key}

    cache.warm_async(["u1", "u2", "u3"], load_profile)
    cache.warmed.wait(0.2)
    assert cache.warm
    assert cache.get("u3") == {"id": "u3"}


# python/cpython gh-128364 ("time.sleep() tests are generally flaky ... if the machine is
# heavily loaded"): a loader future awaited with a fixed bound that a loaded machine exceeds.
def test_refresh_finishes_within_bound(contended):
    cache = TTLCache(ttl=30)

    def refresh() -> int:
        time.sleep(0.5 if contended else 0.01)
        cache.set("prices", [1, 2, 3])
        return 3

    with cf.ThreadPoolExecutor(2) as pool:
        assert pool.submit(refresh).result(timeout=0.25) == 3


# Silva et al. ICSME 2020 (Shaker): a hit-ratio threshold that holds when readers happen to
# start one after another and fails when they start together (a thundering herd of misses).
def test_hit_ratio_with_concurrent_readers(contended):
    cache = TTLCache(ttl=30)
    keys = [f"sku-{i}" for i in range(10)]
    start = threading.Barrier(4, timeout=2)
    turn = [threading.Event() for _ in range(4)]
    turn[0].set()

    def reader(index: int) -> None:
        if contended:
            start.wait()
        else:
            turn[index].wait(5)
        for _ in range(2):
            for key in keys:
                if cache.get(key) is None:
                    time.sleep(0.05)  # the backing store
                    cache.set(key, key.upper())
        if index < 3:
            turn[index + 1].set()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert cache.hit_ratio() >= 0.8


# Check-then-act on a shared map (Luo et al. FSE 2014, "Concurrency: atomicity violation"): two
# callers both see the key missing and both run the expensive loader.
def test_get_or_compute_loads_each_key_once():
    cache = TTLCache(ttl=30)
    calls = []
    together = threading.Barrier(2, timeout=2)

    def loader(key: str) -> str:
        calls.append(key)
        time.sleep(0.2)
        return key * 2

    def caller() -> None:
        together.wait()
        cache.get_or_compute("report", loader)

    threads = [threading.Thread(target=caller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert calls == ["report"]


# cn-uofbasel/PiCN#4 and srand/jolt#84: "dictionary changed size during iteration" when one
# thread sweeps a map another thread writes to.
def test_sweep_while_writer_inserts():
    now = [1000.0]
    main = threading.main_thread()
    in_sweep, inserted = threading.Event(), threading.Event()

    def clock() -> float:
        if threading.current_thread() is main and not inserted.is_set():
            in_sweep.set()
            inserted.wait(2)
        return now[0]

    cache = TTLCache(ttl=10, clock=time.monotonic)
    for index in range(5):
        cache.set(f"session-{index}", index)
    cache.clock = clock

    def writer() -> None:
        in_sweep.wait(2)
        cache.set("session-new", 99)
        inserted.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert cache.sweep() == 0
    finally:
        thread.join(2)


def test_evict_oldest_keeps_the_newest_entries():
    now = [0.0]
    cache = TTLCache(ttl=10, clock=lambda: now[0])
    for index in range(5):
        now[0] = float(index)
        cache.set(f"k{index}", index)
    cache.evict_oldest(keep=2)
    assert sorted(cache._data) == ["k3", "k4"]


# hypothesis/h#4825-style: a MagicMock loader without a return value; its result reaches code
# that needs real data.
def test_loaded_value_spills_to_disk():
    cache = TTLCache(ttl=30)
    loader = MagicMock(name="profile_service.fetch")
    cache.get_or_compute("user:7", loader)
    path = disk.spill("user-7", cache.get("user:7"))
    assert path.exists()


# A journal handle the module keeps open for the rest of the process.
def test_journal_appends_lines():
    handle = disk.journal("evictions")
    handle.write("k1\n")
    handle.flush()
    handle.seek(0)
    assert handle.read().endswith("k1\n")


# iDFlakies / iPFlakies polluter pattern: a test removes an environment variable the suite sets
# up and does not put it back.
def test_spill_needs_a_configured_directory():
    os.environ.pop("CACHEKIT_DIR")
    with pytest.raises(KeyError):
        disk.spill("nowhere", 1)


def test_spill_and_load_roundtrip():
    disk.spill("warm-keys", ["a", "b"])
    assert disk.load("warm-keys") == ["a", "b"]


# Synaptic-Labs-AI/PACT-Plugin#1349 and Digital-Process-Tools/claude-supertool#555: a test puts
# a directory with generic module names on sys.path; a later lazy import resolves to them.
def test_backends_load_from_plugin_directory(tmp_path):
    (tmp_path / "redis_backend.py").write_text("NAME = 'redis'\n")
    (tmp_path / "serializers.py").write_text("class MsgpackSerializer:\n    pass\n")
    found = plugins.load_backends(tmp_path)
    assert sorted(found) == ["redis_backend", "serializers"]


def test_default_codec_roundtrips_nested_values():
    assert codec.roundtrip({"a": [1, 2, {"b": None}]}) == {"a": [1, 2, {"b": None}]}
