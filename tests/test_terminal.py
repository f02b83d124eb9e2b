"""The terminal section: one line when green, blocks, tables and verbosity levels otherwise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_poolchaos.controller.session import SessionResult
from pytest_poolchaos.controller.session import TestRecord as Record
from pytest_poolchaos.model import (
    Attempt,
    Category,
    Diagnosis,
    Leak,
    RuleScore,
    Suggestion,
    Verdict,
)
from pytest_poolchaos.report.terminal import View, render

FAILING = """
    import os

    def test_ok():
        pass

    def test_rate():
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:  # a rate measured on concurrent work
            rate = sum(pool.map(float, [0.2, 0.2]))
        assert rate >= 0.8

    def test_sets_env():
        os.environ["POOL_MODE"] = "affinity"
"""


def _diagnosis(**changes: object) -> Diagnosis:
    base = Diagnosis(
        category=Category.EXPECTATION,
        confidence=0.8,
        reasons=("asserted rate >= 0.8, got 0.4", "second line", "third line", "fourth line"),
        suggestions=(Suggestion("Set the bound from measurements.", "assert rate >= 0.36"),),
        rules=(RuleScore("expectation.threshold", Category.EXPECTATION, 0.7),),
    )
    return base.evolve(**changes)


def _result(**changes: object) -> SessionResult:
    records = {
        "t.py::test_ok": Record("t.py::test_ok", leaks=(
            Leak("thread", "thread 'poller' (daemon=False) is still running"),)),
        "t.py::test_rate": Record("t.py::test_rate", location=("t.py", 5, "test_rate"),
                                      outcome="failed", diagnosis=_diagnosis()),
        "t.py::test_slow": Record("t.py::test_slow", duration_s=0.9, timeout_s=1.0),
    }
    result = SessionResult(records=records, args=[], workers=0, start=0.0)
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def _lines(text: str) -> list[str]:
    return text.splitlines()


# -- pure renderer ----------------------------------------------------------------------------


def test_blocks_show_category_evidence_suggestions_leaks_and_near_timeouts():
    text = render(_result(), View(width=100))
    assert text.startswith("poolchaos: 3 tests, 1 failure (1 expectation), 1 leak in 1 test, "
                           "1 near-timeout")
    assert "1. t.py::test_rate" in text
    assert "expectation  confidence 0.80  verdict unknown (not rerun)" in text
    assert "1. asserted rate >= 0.8, got 0.4" in text
    assert "(+1 more with -v)" in text
    assert "fourth line" not in text
    assert "1. Set the bound from measurements." in text
    assert "assert rate >= 0.36" in text
    assert "--poolchaos-rerun=3" in text
    lines = _lines(text)
    leak_row = next(i for i, line in enumerate(lines) if "poller" in line)
    assert lines[leak_row].split()[0] == "thread"
    assert lines[leak_row - 1].strip() == "t.py::test_ok", "a leak is listed under its test"
    slow = next(line for line in _lines(text) if line.endswith("t.py::test_slow"))
    assert "0.90 s" in slow
    assert "1 s" in slow
    assert "90%" in slow
    assert "\x1b[" not in text
    assert "─" not in text
    assert "plugin problems" not in text


def test_verbose_adds_every_evidence_line_reruns_rules_polluter_and_alongside():
    diagnosis = _diagnosis(
        category=Category.CONFIG_POLLUTION, verdict=Verdict.ORDER_DEPENDENT, pass_rate=0.5,
        reruns=2, polluter="t.py::test_sets_env",
        polluter_search={"method": "ledger", "runs": 1, "seconds": 0.42},
        attempts=(Attempt("inline", "failed", 0.12, "MODE is affinity"),
                  Attempt("isolated", "passed", 0.31)))
    result = _result()
    result.records["t.py::test_rate"].diagnosis = diagnosis
    result.alongside = {"t.py::test_rate": [("t.py::test_other", "gw1", 0.25)]}
    normal, verbose = render(result, View(0, 100)), render(result, View(1, 100))
    for text in (normal, verbose):
        assert "order-dependent, passed 1 of 2 reruns" in text
        assert "polluter: t.py::test_sets_env (found by ledger, 1 run, 0.4 s)" in text
    # test_other touched nothing test_rate met and pollution is not timing: -v only
    assert "0.25 s on gw1  t.py::test_other" in verbose
    assert "ran alongside" not in normal
    assert "fourth line" in verbose
    assert "fourth line" not in normal
    assert "rules: expectation.threshold" in verbose
    assert "rules:" not in normal
    assert any(line.split()[:2] == ["isolated", "passed"] for line in _lines(verbose))
    assert "MODE is affinity" in verbose
    assert "reruns" not in normal.replace("2 reruns", "")
    assert len(_lines(verbose)) > len(_lines(normal))


def test_quiet_gives_one_line_per_failure():
    result = _result()
    result.records["t.py::test_two"] = Record(
        "t.py::test_two", outcome="error", diagnosis=_diagnosis(category=Category.LIFECYCLE))
    lines = _lines(render(result, View(-1, 120)))
    assert lines[0].startswith("poolchaos: 4 tests, 2 failures")
    assert lines[1] == "t.py::test_rate expectation 0.80  fix: Set the bound from measurements."
    assert lines[2].startswith("t.py::test_two lifecycle 0.80  fix:")
    assert lines[3].startswith("next: --poolchaos-rerun=3 would prove the 2 open verdicts")
    assert not any(line.startswith("t.py::") for line in lines[3:])


def test_problems_and_hanging_threads_are_labelled():
    result = _result(problems=["ScopeRecorder._open: KeyError: 'x' at scope.py:3"],
                     hanging=["thread 'blocked_0' started by t.py::test_rate"])
    text = render(result, View(0, 100))
    assert "plugin problems (bugs in poolchaos, not in your tests):" in text
    assert text.count("KeyError: 'x'") == 1
    assert "threads that hang interpreter exit:\n  thread 'blocked_0'" in text


@pytest.mark.parametrize("width", [60, 100])
def test_plain_lines_fit_the_width(width):
    result = _result()
    long = "a long evidence line with many words " * 6
    result.records["t.py::test_rate"].diagnosis = _diagnosis(
        reasons=(long,), suggestions=(Suggestion(long, "x = compute(" + "y, " * 30 + ")"),))
    for verbosity in (-1, 0, 1):
        lines = _lines(render(result, View(verbosity, width)))
        assert max(len(line) for line in lines) <= width
        assert all(line == line.rstrip() for line in lines)


def test_colour_uses_ansi_codes():
    text = render(_result(), View(0, 100, color=True))
    assert "\x1b[" in text


# -- in a pytest run ---------------------------------------------------------------------------


def test_failing_run_prints_section_after_failures(chaostester):
    chaostester.pytester.makepyfile(FAILING)
    run = chaostester.run("--color=no")
    text = run.text()
    assert "\x1b[" not in text
    assert text.index("= FAILURES =") < text.index("= poolchaos =")
    assert text.index("= poolchaos =") < text.index("short test summary info")
    run.result.stdout.fnmatch_lines([
        "poolchaos: 3 tests, 1 failure (1 *)*",
        "1. test_failing_run_prints_section_after_failures.py::test_rate",
        f"    {run.category('test_rate')}  confidence *",
        "    evidence",
        "      1. *",
        "    suggestions",
        "      1. *",
    ])


def test_quiet_and_verbose_runs(chaostester):
    chaostester.pytester.makepyfile(FAILING)
    quiet = chaostester.run("-q").result.stdout.lines
    verbose = chaostester.run("-v").result.stdout.lines
    section = [line for line in quiet if line.startswith("test_quiet_and_verbose_runs.py::")]
    assert len(section) == 1
    assert " fix: " in section[0]
    assert any(line.strip().startswith("rules: ") for line in verbose)


def test_green_run_prints_exactly_one_line(chaostester):
    chaostester.pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    run = chaostester.run()
    lines = [line for line in run.result.stdout.lines
             if "poolchaos" in line and not line.startswith("plugins:")]
    assert lines == ["poolchaos: 2 tests, no failures, no leaks"]


#: what a green run must never load: the renderer, the failure path's model and rules, SQLite
_FAILURE_ONLY = ("rich", "pytest_poolchaos.model.values", "pytest_poolchaos.classify.catalogue",
                 "pytest_poolchaos.worker.frames", "sqlite3")


def test_green_run_loads_nothing_only_a_failure_needs(pytester):
    # The shapes of a realistic green suite: a module's shared pool whose worker thread a test
    # starts and leaves idle (the scope's slow path), and an environment change undone.
    pytester.makepyfile(
        """
        from concurrent.futures import ThreadPoolExecutor

        import pytest

        @pytest.fixture(scope="module")
        def pool():
            with ThreadPoolExecutor(1) as shared:
                yield shared

        def test_a():
            pass

        def test_shared_pool(pool, monkeypatch):
            monkeypatch.setenv("POOLCHAOS_GREEN", "1")
            assert pool.submit(int, "1").result(timeout=30) == 1
        """
    )
    args = ["-q", "-p", "poolchaos", "-p", "no:randomly", "-p", "no:cacheprovider"]
    code = (f"import sys, pytest\npytest.main({args!r})\n"
            f"print('LOADED', [name for name in {_FAILURE_ONLY!r} if name in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=pytester.path, capture_output=True,
                         text=True, timeout=60).stdout
    assert "poolchaos: 2 tests, no failures, no leaks" in out
    assert "LOADED []" in out, out


def test_annotations_come_last_when_asked(chaostester):
    chaostester.pytester.makepyfile(FAILING)
    lines = chaostester.run("--poolchaos-annotations=on").result.stdout.lines
    assert lines[-1].startswith("::error file=test_annotations_come_last_when_asked.py,line=6,")
    assert "title=poolchaos " in lines[-1]
    quiet = chaostester.run("--poolchaos-annotations=off").result.stdout.lines
    assert not any(line.startswith("::error") for line in quiet)


def test_plugin_problems_are_shown_once_and_a_broken_renderer_does_not_abort(
        chaostester, monkeypatch):
    from pytest_poolchaos.report import terminal

    chaostester.pytester.makeconftest(
        """
        from pytest_poolchaos import guard

        def pytest_sessionstart():
            guard.record("probe", ValueError("boom"))
        """
    )
    chaostester.pytester.makepyfile(FAILING)
    text = chaostester.run().text()
    assert "plugin problems (bugs in poolchaos, not in your tests):" in text
    assert text.count("probe: ValueError: boom") == 1

    def broken(*args: object) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(terminal, "render", broken)
    run = chaostester.run()
    run.result.assert_outcomes(passed=2, failed=1)
    run.result.stdout.fnmatch_lines(["poolchaos: could not draw the report: *renderer bug*"])


def test_regular_files_left_open_are_one_line_unless_verbose(chaostester):
    chaostester.pytester.makepyfile(
        """
        import os

        KEPT = []

        def test_keeps_a_raw_descriptor(tmp_path):
            KEPT.append(os.open(tmp_path / "lock", os.O_CREAT | os.O_RDWR))
        """
    )
    quiet = chaostester.run()
    assert quiet.leaks("test_keeps_a_raw_descriptor")  # the JSON keeps the finding
    section = quiet.text()
    assert "1 regular file descriptor(s) left open by 1 test(s)" in section
    assert "is still open" not in section
    verbose = chaostester.run("-v").text()
    assert "is still open" in verbose
    assert "regular file descriptor(s) left open" not in verbose


@pytest.mark.parametrize(("leaks", "wanted"), [
    (("thread",), "stop what it starts in its teardown"),
    (("logger", "env"), "put back what it changes"),
    (("socket", "env"), "stop what it starts and put back what it changes"),
])
def test_the_next_step_for_a_leak_says_what_kind_of_leak_it_is(leaks, wanted):
    # Seen on a web server's suite: a test whose one leak was a logger's level was told to
    # stop what it starts.
    from pytest_poolchaos.report.summary import next_step

    record = Record("t.py::test_x", leaks=tuple(Leak(kind, f"a {kind}") for kind in leaks))
    line = next_step(SessionResult(records={record.nodeid: record}, args=[], workers=0,
                                   start=0.0))
    assert line.startswith(f"next: make t.py::test_x {wanted} "), line


def test_escape_sequences_in_a_tests_output_are_shown_not_sent(chaostester):
    # A test's message that carries terminal controls (a shell's bracketed-paste switch, a
    # screen clear) must not move the cursor or clear the screen in the report or a CI log.
    chaostester.pytester.makepyfile("""
        def test_prompt():
            banner = "\\x1b[?2004l\\r\\x1b[2J/root"
            assert banner.startswith("/root"), banner
    """)
    run = chaostester.run("--color=no", "--poolchaos-annotations=on",
                          "--poolchaos-markdown=summary.md")
    section = run.text()[run.text().index("= poolchaos ="):]
    section = section[:section.index("short test summary info")]
    assert "\\x1b[?2004l" in section
    assert "\x1b" not in section
    assert "\r" not in section
    annotation = run.result.stdout.lines[-1]
    assert annotation.startswith("::error ")
    assert "\x1b" not in annotation
    markdown = (chaostester.path / "summary.md").read_text()
    assert "\\x1b[?2004l" in markdown
    assert "\x1b" not in markdown
