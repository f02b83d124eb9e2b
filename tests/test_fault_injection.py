"""Fault injection (issue #8): every step the plugin's hooks take is made to raise in turn.

Each time the session must end as it would without the fault: the same outcomes, the same
exit status, and the fault told in one plain line, with no traceback and no INTERNALERROR.
The steps are patched in this process and the session runs in-process, so a step is the very
function the hook calls. Steps that release something (uninstall, close, arm) do their work
first and raise after it, so a fault never leaves wrappers behind in this process.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from reliability_support import assert_no_crash

# one word: the terminal section wraps long lines at spaces, never inside a word
FAULT = "simulated-plugin-fault"

SUITE = """
import os

def test_pass():
    pass

def test_fail():
    assert 1 == 2

def test_leaks_env():
    os.environ["POOLCHAOS_FI_LEFT_BEHIND"] = "1"
"""

EXPECTED = ({"passed": 2, "failed": 1}, pytest.ExitCode.TESTS_FAILED)
OUTPUTS = (
    # in-process sessions after the first find the plugin imported already: not our warning
    "-W", "ignore::pytest.PytestAssertRewriteWarning",
    "--poolchaos-markdown=r.md", "--poolchaos-annotations=on",
           "--poolchaos-journal=j.jsonl", "--poolchaos-history=h.sqlite", "--junitxml=j.xml")

#: (dotted path of the step, when it raises): "before" its work, or "after" it
STEPS = [
    # pytest_configure
    ("pytest_poolchaos.plugin.resolve", "before"),
    ("pytest_poolchaos.worker.recorder.ScopeRecorder", "before"),
    ("pytest_poolchaos.controller.session.ChaosController", "before"),
    ("pytest_poolchaos.report.TerminalSection", "before"),
    # pytest_sessionstart
    ("pytest_poolchaos.sanitize.watch_environ", "before"),
    ("pytest_poolchaos.worker.scope.PoolScope.install", "before"),
    ("pytest_poolchaos.worker.scope.spawn.Spawns.refresh", "before"),
    ("pytest_poolchaos.worker.exit_guard.ExitGuard.start", "before"),
    ("pytest_poolchaos.worker.surroundings.prime", "before"),
    ("pytest_poolchaos.journal.plan", "before"),
    ("pytest_poolchaos.journal.JournalWriter.write", "before"),
    ("pytest_poolchaos.timeouts.session_limit", "before"),
    # per test
    ("pytest_poolchaos.timeouts.effective", "before"),
    ("pytest_poolchaos.journal.JournalWriter.test_start", "before"),
    ("pytest_poolchaos.worker.scope.PoolScope.open", "before"),
    ("pytest_poolchaos.worker.scope.PoolScope.close", "before"),
    ("pytest_poolchaos.worker.recorder.ScopeRecorder._not_passed", "before"),
    ("pytest_poolchaos.worker.recorder.ScopeRecorder._ended", "before"),
    ("pytest_poolchaos.worker.evidence.from_call", "before"),
    ("pytest_poolchaos.classify.classify", "before"),
    ("pytest_poolchaos.worker.recorder.ScopeRecorder._payload", "before"),
    ("pytest_poolchaos.controller.session.fold", "before"),
    # pytest_sessionfinish
    ("pytest_poolchaos.worker.recorder.ScopeRecorder.summary", "before"),
    ("pytest_poolchaos.controller.session.ChaosController.finish", "before"),
    ("pytest_poolchaos.diagnose.refine", "before"),
    ("pytest_poolchaos.history.session.remember", "before"),
    ("pytest_poolchaos.report.junit.refresh", "before"),
    ("pytest_poolchaos.report.write_files", "before"),
    ("pytest_poolchaos.report.json.build", "before"),
    ("pytest_poolchaos.report.markdown.build", "before"),
    # pytest_terminal_summary
    ("pytest_poolchaos.report.summary.clean_line", "before"),
    ("pytest_poolchaos.report.terminal.render", "before"),
    # pytest_unconfigure
    ("pytest_poolchaos.report.github.commands", "before"),
    ("pytest_poolchaos.worker.scope.PoolScope.uninstall", "after"),
    ("pytest_poolchaos.worker.exit_guard.ExitGuard.arm", "after"),
    ("pytest_poolchaos.journal.JournalWriter.close", "after"),
]

CHAOS = "--poolchaos-chaos=jitter=1ms,seed=1"
#: steps of chaos mode, run with CHAOS
CHAOS_STEPS = [
    ("pytest_poolchaos.chaos.noise.Noise.install", "before"),
    ("pytest_poolchaos.chaos.noise.Noise.begin", "before"),
    ("pytest_poolchaos.chaos.noise.Noise.end", "before"),
    ("pytest_poolchaos.chaos.noise.Noise.summary", "before"),
    ("pytest_poolchaos.chaos.noise.Noise.uninstall", "after"),
    ("pytest_poolchaos.chaos.session.replay_hint", "before"),
]


def _target(dotted: str) -> tuple[Any, str]:
    """The object holding the step and the step's name (a module or a class attribute)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            holder: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:-1]:
            holder = getattr(holder, name)
        return holder, parts[-1]
    raise LookupError(dotted)


def _faulty(original: Any, when: str) -> Any:
    def step(*args: Any, **kwargs: Any) -> Any:
        if when == "after":
            original(*args, **kwargs)
        raise RuntimeError(FAULT)

    return step


def _run(chaostester: Any, *args: str) -> Any:
    chaostester.pytester.makepyfile(test_suite=SUITE)
    return chaostester.run(*OUTPUTS, *args)


def _cases() -> list[Any]:
    return [pytest.param(step, when, args, id=step.split(".", 1)[1])
            for steps, args in ((STEPS, ()), (CHAOS_STEPS, (CHAOS,)))
            for step, when in steps]


@pytest.mark.parametrize("args", [(), (CHAOS,)], ids=["default", "chaos"])
def test_without_a_fault(chaostester, args):
    # The control: what every faulty run must match, and no problem told.
    run = _run(chaostester, *args)
    assert (run.result.parseoutcomes(), run.ret) == EXPECTED
    assert "plugin problem" not in run.text()
    assert run.test("test_fail")["diagnosis"] is not None


@pytest.mark.parametrize(("step", "when", "args"), _cases())
def test_a_fault_in_a_step_changes_nothing(chaostester, monkeypatch, step, when, args):
    holder, name = _target(step)
    original = getattr(holder, name)
    hits = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        hits.append(1)
        return _faulty(original, when)(*args, **kwargs)

    monkeypatch.setattr(holder, name, counted)
    run = _run(chaostester, *args)
    text = run.text() + run.result.stderr.str()
    assert hits, f"{step} was never called: the fault tested nothing"
    assert_no_crash(text)
    assert (run.result.parseoutcomes(), run.ret) == EXPECTED
    told = [line for line in text.splitlines() if FAULT in line]
    assert len(told) == 1, "\n".join(told) or text[-3000:]


def test_a_failed_spawn_refresh_still_opens_every_scope(chaostester, monkeypatch):
    # The refresh runs as each test's scope opens: its failure must cost only what it wraps,
    # never the scope itself (the leak below is found by the env probe, not by a wrapper).
    monkeypatch.setattr(_target("pytest_poolchaos.worker.scope.spawn.Spawns.refresh")[0],
                        "refresh", _faulty(None, "before"))
    run = _run(chaostester)
    assert (run.result.parseoutcomes(), run.ret) == EXPECTED
    assert [leak["kind"] for leak in run.leaks("test_leaks_env")] == ["env"]
    assert run.test("test_fail")["diagnosis"] is not None
