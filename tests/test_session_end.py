"""What a session leaves in the process once it ends: nothing of the plugin's on an object that
lives until exit. A class, wrapper or fork callback left there keeps the plugin's modules, and
what they reach, alive into interpreter exit, which then frees them the slow way (about 4 ms
more on every run, measured with ``benchmarks/overhead.py --only one``).
"""

from __future__ import annotations

import gc
import os
import threading

from pytest_poolchaos import sanitize
from pytest_poolchaos.worker.scope import forks


class _Counts:
    def __init__(self) -> None:
        self.before = 0
        self.after = 0

    def note_before(self) -> None:
        self.before += 1

    def note_after(self) -> None:
        self.after += 1


def test_fork_callbacks_hold_their_target_weakly():
    counts = _Counts()
    forks.at_fork(counts.note_before, counts.note_after)
    pid = os.fork()
    if pid == 0:  # the child leaves at once
        os._exit(0)
    os.waitpid(pid, 0)
    assert (counts.before, counts.after) == (1, 1)
    gone = _weak(counts)
    del counts
    gc.collect()
    assert gone() is None


def _weak(obj: object):
    import weakref

    return weakref.ref(obj)


def test_the_fork_module_namespace_holds_no_module():
    # A module reached from a fork callback lives until exit, with all it reaches (typing's
    # caches reach every annotated class of the session).
    modules = [name for name, value in vars(forks).items()
               if type(value) is type(os) and name != "__builtins__"]
    assert modules == []


def test_the_environment_gets_its_own_class_back_when_the_last_watcher_ends():
    watched, watchers = type(os.environ), sanitize._WATCHERS[0]
    sanitize._WATCHERS[0] = 0  # whatever other tests of this process left watching
    try:
        sanitize.watch_environ()
        sanitize.watch_environ()  # a session inside a session (pytester)
        sanitize.unwatch_environ()
        assert type(os.environ).__name__ == "_RememberingEnviron"
        sanitize.unwatch_environ()
        assert type(os.environ) is os._Environ
    finally:
        os.environ.__class__ = watched
        sanitize._WATCHERS[0] = watchers


def test_a_finished_session_leaves_no_class_or_wrapper_behind(chaostester):
    # Checked at exit, after every unconfigure ran: the session's own process.
    chaostester.pytester.makeconftest(
        """
        import atexit
        import os
        import threading

        def check():
            left = []
            if type(os.environ) is not os._Environ:
                left.append("os.environ")
            for cls, name in ((threading.Thread, "start"), (threading.Condition, "wait"),
                              (threading.Thread, "join")):
                if getattr(getattr(cls, name), "__poolchaos__", False):
                    left.append(f"{cls.__name__}.{name}")
            with open("left.txt", "w") as out:
                out.write(",".join(left) or "nothing")

        atexit.register(check)
        """
    )
    chaostester.pytester.makepyfile(
        """
        import threading

        def test_starts_a_thread():
            thread = threading.Thread(target=lambda: None)
            thread.start()
            thread.join()
        """
    )
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=1)
    assert (chaostester.path / "left.txt").read_text() == "nothing"
    assert threading.Thread.start.__module__ == "threading"  # this process untouched


def test_a_write_made_between_two_watching_sessions_is_seen_by_the_second(monkeypatch):
    # pytester sets HOME for each test between the sessions it runs: the snapshot copied in
    # the first session must not stand for the environment in the next.
    from pytest_poolchaos.worker.scope import globals as state

    watched, watchers = type(os.environ), sanitize._WATCHERS[0]
    sanitize._WATCHERS[0] = 0
    try:
        sanitize.watch_environ()
        state.builtin_snapshot()
        sanitize.unwatch_environ()
        monkeypatch.setenv("POOLCHAOS_BETWEEN_SESSIONS", "set")
        sanitize.watch_environ()
        after = state.builtin_snapshot()
        sanitize.unwatch_environ()
    finally:
        os.environ.__class__ = watched
        sanitize._WATCHERS[0] = watchers
    assert after[0].get(b"POOLCHAOS_BETWEEN_SESSIONS") == b"set"
