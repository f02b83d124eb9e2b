"""Issue #8, outputs: the journal, report files, the ``poolchaos`` CLI, secrets and bad input.

Black-box regression tests: the command line, ini files, the ``poolchaos`` console script and
the files and text a run leaves behind. A test the current code still fails carries
``xfail(strict=True)`` naming its defect; the fix for that defect removes the mark.

Map (test -> defect):
    test_journal_path_naming_a_directory_is_refused ........... D15 (command line and ini key)
    test_a_file_the_plugin_did_not_write_is_never_moved ......... D15
    test_default_journal_survives_a_thread_timeout_kill ........ D6
    test_runs_sharing_a_journal_keep_each_others_records ........ D16
    test_secrets_are_masked_in_every_output ...................... D14 (serial and xdist)
    test_big_env_values_are_clipped_in_every_output .............. D13
    test_markdown_appends_to_the_step_summary .................... D18
    test_report_files_follow_the_umask ............................ D18
    test_report_cli_on_well_formed_journal_with_wrong_types ..... D19
    test_report_cli_with_unwritable_json_path .................... D19
    test_bad_input_is_a_usage_error_at_start_up ................... D20
    test_checking_a_report_path_leaves_nothing_behind ............ D20 (the start-up check)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_support import (
    PLUGIN,
    annotations,
    assert_no_crash,
    kill_quietly,
    poolchaos_section,
    run_cli,
)

# -- D15 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["command line", "ini"])
def test_journal_path_naming_a_directory_is_refused(pytester, where):
    tests = pytester.mkdir("tests")
    (tests / "test_one.py").write_text("def test_pass():\n    pass\n")
    if where == "ini":
        pytester.makeini("[pytest]\npoolchaos_journal = tests\n")
        args: tuple[str, ...] = ("tests",)
    else:
        args = ("--poolchaos-journal=tests", "tests")
    result = pytester.runpytest_inprocess(*PLUGIN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    named = "poolchaos_journal" if where == "ini" else "--poolchaos-journal"
    assert named in result.stderr.str()
    assert_no_crash(result.stdout.str() + result.stderr.str())
    assert (tests / "test_one.py").read_text() == "def test_pass():\n    pass\n"
    assert not (pytester.path / "tests.prev").exists()


def test_a_file_the_plugin_did_not_write_is_never_moved(pytester):
    notes = pytester.path / "results.jsonl"
    original = b'{"build": 41, "status": "green"}\n'
    notes.write_bytes(original)
    pytester.makepyfile("def test_pass():\n    pass\n")
    for _ in range(2):
        pytester.runpytest_inprocess(*PLUGIN, "--poolchaos-journal=results.jsonl")
    # Refusing the path or appending after the user's lines are both fine; moving is not.
    assert notes.read_bytes().startswith(original)


# -- D6 -------------------------------------------------------------------------------------

HANGING_SUITE = """
import threading

import pytest

def test_first():
    pass

@pytest.mark.timeout(1, method="thread")
def test_hang():
    threading.Event().wait(30)
"""


def test_default_journal_survives_a_thread_timeout_kill(pytester):
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(test_killed=HANGING_SUITE)
    # No journal option at all, and the cache plugin on: the default is what is tested.
    killed = pytester.runpytest_subprocess("-p", "poolchaos", "-p", "no:randomly",
                                           "-p", "no:xdist", timeout=60)
    assert killed.ret == 1  # pytest-timeout's os._exit(1): no report, no sessionfinish
    # where under the cache is the plugin's business (one file, or one per run)
    journals = sorted((p for p in (pytester.path / ".pytest_cache").rglob("*")
                       if p.is_file() and "poolchaos" in str(p) and p.suffix == ".jsonl"),
                      key=lambda p: p.stat().st_mtime)
    assert journals, "no journal under .pytest_cache"
    report = run_cli(pytester, "report", "--journal", str(journals[-1]))
    assert report.ret == 0
    out = report.stdout.str()
    assert "test_killed.py::test_hang" in out
    assert "timeout" in out
    # and the next run says that the killed one died in test_hang
    pytester.makepyfile(test_killed="def test_ok():\n    pass\n")
    again = pytester.runpytest_subprocess("-p", "poolchaos", "-p", "no:randomly", timeout=60)
    assert "test_killed.py::test_hang" in again.stdout.str()


# -- D16 ------------------------------------------------------------------------------------

WAITING_RUN = """
import time
from pathlib import Path

def test_waits_for_the_other_run():
    Path("a-started").touch()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # killed by the outer test long before
        time.sleep(0.05)
"""


def test_runs_sharing_a_journal_keep_each_others_records(pytester):
    pytester.makeini("[pytest]\npoolchaos_journal = shared.jsonl\n")
    pytester.makepyfile(test_slow=WAITING_RUN, test_fast="def test_fast():\n    assert 1 == 2\n")
    command = [sys.executable, "-m", "pytest", *PLUGIN]
    run_a = subprocess.Popen([*command, "test_slow.py"], cwd=pytester.path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (pytester.path / "a-started").exists():
            assert run_a.poll() is None, "run A ended before its test started"
            assert time.monotonic() < deadline, "run A never started its test"
            time.sleep(0.02)
        # run B, start to end, while run A is live
        run_b = pytester.runpytest_subprocess(*PLUGIN, "test_fast.py", timeout=60)
    finally:
        run_a.send_signal(signal.SIGKILL)  # run A dies without a report, as a CI kill would
        run_a.wait(30)
    b_text = run_b.stdout.str() + run_b.stderr.str()
    run_b.assert_outcomes(failed=1)
    assert "test_waits_for_the_other_run" not in b_text, "B gave a false notice about A"
    assert "did not finish" not in b_text
    # Run A's death is still on record: the next run names it, or the journal report does.
    run_c = pytester.runpytest_subprocess(*PLUGIN, "test_fast.py", timeout=60)
    report = run_cli(pytester, "report", "--journal", str(pytester.path / "shared.jsonl"))
    told = run_c.stdout.str() + run_c.stderr.str() + report.stdout.str()
    assert "test_slow.py::test_waits_for_the_other_run" in told
    # told by the next run's header, and once: the run after that says nothing of it
    assert "did not finish" in run_c.stdout.str()
    run_d = pytester.runpytest_subprocess(*PLUGIN, "test_fast.py", timeout=60)
    assert "did not finish" not in run_d.stdout.str()


# -- D14 ------------------------------------------------------------------------------------

SECRETS = {
    "env var named like a secret": "hunter2-S1",
    "option named like a secret": "ci-token-S13",
    "option named like a secret, value as its own argument": "db-pass-S21",
    "secret env var set and removed by the test": "tmp-token-S7",
    "URL password": "pgpass-S9",
    "AWS access key": "AKIAQX7ZEXAMPLE2KEYS",
    "bearer token": "b3arer0tok3n0value0zz",
    "GitHub token": "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
}

SECRET_SUITE = """
import os, subprocess
from pathlib import Path

def test_child_started_with_the_password():
    child = subprocess.Popen(["sh", "-c", "sleep 30", "x",
                              f"--password={os.environ['SERVICE_PASSWORD']}",
                              "--db=postgres://app:pgpass-S9@db.local/app"])
    Path("children.pids").write_text(str(child.pid))

def test_temporary_token_in_error():
    os.environ["TEMP_TOKEN"] = "tmp-token-S7"
    try:
        raise RuntimeError(f"auth rejected: {os.environ['TEMP_TOKEN']}")
    finally:
        del os.environ["TEMP_TOKEN"]

def test_token_shapes_in_error():
    raise ConnectionResetError(
        "upstream rejected AKIAQX7ZEXAMPLE2KEYS with "
        "Authorization: Bearer b3arer0tok3n0value0zz, "
        "then ghp_0123456789abcdefghijABCDEFGHIJ012345 and "
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl "
        "for postgres://app:pgpass-S9@db.local/app")
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_secrets_are_masked_in_every_output(pytester, monkeypatch, workers):
    if workers:
        pytest.importorskip("xdist")
    pytester.makeconftest(
        "def pytest_addoption(parser):\n    parser.addoption('--api-token', default=None)\n"
        "    parser.addoption('--db-password', default=None)\n")
    pytester.makepyfile(test_s=SECRET_SUITE)
    monkeypatch.setenv("SERVICE_PASSWORD", SECRETS["env var named like a secret"])
    try:
        run = pytester.runpytest_subprocess(
            *PLUGIN, *workers, "--api-token=ci-token-S13", "--db-password", "db-pass-S21",
            "--poolchaos-json=r.json", "--junitxml=j.xml",
            "--poolchaos-markdown=r.md", "--poolchaos-journal=j.jsonl",
            "--poolchaos-annotations=on", timeout=60)
    finally:
        pids = pytester.path / "children.pids"
        if pids.exists():
            kill_quietly(int(pids.read_text()))
    run.assert_outcomes(passed=1, failed=2)
    monkeypatch.delenv("SERVICE_PASSWORD")
    rebuilt = run_cli(pytester, "report", "--journal", "j.jsonl", "--json", "rebuilt.json")
    text = run.stdout.str()
    outputs = {
        "terminal section": poolchaos_section(text),
        "annotations": annotations(text),
        "JSON": (pytester.path / "r.json").read_text(),
        "Markdown": (pytester.path / "r.md").read_text(),
        "journal": journal_text(pytester.path / "j.jsonl"),
        "poolchaos report": rebuilt.stdout.str() + rebuilt.stderr.str(),
        "poolchaos report --json": (pytester.path / "rebuilt.json").read_text(),
        # pytest's own failure texts in the XML are pytest's; the plugin's properties are ours
        "JUnit properties": junit_properties(pytester.path / "j.xml"),
    }
    # the outputs are there at all (a missing output would hide nothing)
    assert "test_token_shapes_in_error" in outputs["terminal section"]
    assert "test_child_started_with_the_password" in outputs["JSON"]
    assert "poolchaos.leak" in outputs["JUnit properties"]
    leaked = [f"{what} in {where}" for where, output in outputs.items()
              for what, secret in SECRETS.items() if secret in output]
    assert not leaked, "secrets found:\n" + "\n".join(leaked)


def junit_properties(path: Path) -> str:
    from xml.etree import ElementTree

    return "\n".join(f"{p.get('name')}={p.get('value')}"
                     for p in ElementTree.parse(path).iter("property")
                     if str(p.get("name")).startswith("poolchaos."))


def journal_text(path: Path) -> str:
    """Everything the journal option wrote: the file, or per-run files beside or under it."""
    found = [p for p in path.parent.glob(path.name + "*") if p.is_file()]
    found += [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    assert found, f"nothing written at {path}"
    return "".join(p.read_text(errors="replace") for p in found)


# -- D13 ------------------------------------------------------------------------------------

def test_big_env_values_are_clipped_in_every_output(chaostester):
    chaostester.pytester.makepyfile(
        """
        import os

        def test_leaks_a_big_env_value():
            # a serialized config blob exported for a child process and never removed
            os.environ["APP_CONFIG_BLOB"] = "x" * 300_000

        def test_reads_it():
            assert os.environ["APP_CONFIG_BLOB"] == ""
        """
    )
    run = chaostester.run("--poolchaos-markdown=r.md")
    assert run.leaks("test_leaks_a_big_env_value")  # still reported, only clipped
    outputs = {
        "terminal section": poolchaos_section(run.text()),
        "JSON": (chaostester.path / "poolchaos.json").read_text(),
        "Markdown": (chaostester.path / "r.md").read_text(),
    }
    for where, output in outputs.items():
        assert len(output) < 50_000, f"{where}: {len(output)} characters"
        assert "x" * 1000 not in output, where


# -- D18 ------------------------------------------------------------------------------------

def test_markdown_appends_to_the_step_summary(chaostester, monkeypatch):
    summary = chaostester.path / "step_summary.md"
    earlier = "## Lint results (an earlier command of the same CI step)\n\nall clean\n"
    summary.write_text(earlier)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    chaostester.pytester.makepyfile("def test_fail():\n    assert 1 == 2\n")
    chaostester.run(f"--poolchaos-markdown={summary}")
    text = summary.read_text()
    assert text.startswith(earlier)
    assert "test_fail" in text[len(earlier):]


def test_report_files_follow_the_umask(chaostester):
    chaostester.pytester.makepyfile("def test_fail():\n    assert 1 == 2\n")
    # 027, not the usual 022: a fixed chmod 0644 would pass with 022 and fail here
    previous = os.umask(0o027)
    try:
        chaostester.run("--poolchaos-markdown=r.md", "--poolchaos-html=r.html",
                        subprocess=True)
    finally:
        os.umask(previous)
    for name in ("poolchaos.json", "r.md", "r.html"):
        mode = (chaostester.path / name).stat().st_mode & 0o777
        assert mode == 0o640, f"{name}: {oct(mode)}"


# -- D19 ------------------------------------------------------------------------------------

RUN = '"run": "r1", "worker": null'
BAD_JOURNALS = {
    "time is text": f'{{"event": "run-start", {RUN}, "time": "yesterday", "args": []}}\n',
    "exit status is text": (
        f'{{"event": "run-start", {RUN}, "time": 1, "args": []}}\n'
        f'{{"event": "run-end", {RUN}, "time": 2, "exitstatus": "boom"}}\n'),
    "unknown category": (
        f'{{"event": "run-start", {RUN}, "time": 1, "args": []}}\n'
        f'{{"event": "test-result", {RUN}, "time": 2, "nodeid": "t.py::x", '
        f'"outcome": "failed", "diagnosis": {{"category": "bogus", "confidence": 1}}}}\n'),
    "args is a number": f'{{"event": "run-start", {RUN}, "time": 1, "args": 7}}\n',
    "time out of range": f'{{"event": "run-start", {RUN}, "time": 1e20, "args": []}}\n',
    "worker is an object": (
        '{"event": "run-start", "run": 5, "worker": [1], "time": 1, "args": [], "pid": "me"}\n'
        '{"event": "test-start", "run": 5, "worker": {"a": 1}, "time": 2, "nodeid": "t::x"}\n'),
}


@pytest.mark.parametrize("case", sorted(BAD_JOURNALS))
def test_report_cli_on_well_formed_journal_with_wrong_types(pytester, case):
    path = pytester.path / "journal.jsonl"
    path.write_text(BAD_JOURNALS[case])
    result = run_cli(pytester, "report", "--journal", str(path))
    assert_no_crash(result.stdout.str() + result.stderr.str())
    # 0: the bad fields were skipped; 2: the CLI's own "cannot use this journal" status
    assert result.ret in (0, 2)
    assert (result.stdout.str() + result.stderr.str()).strip()


def test_report_cli_with_unwritable_json_path(pytester):
    path = pytester.path / "journal.jsonl"
    path.write_text(f'{{"event": "run-start", {RUN}, "time": 1, "args": []}}\n')
    (pytester.path / "afile").write_text("not a directory\n")
    target = pytester.path / "afile" / "out.json"
    result = run_cli(pytester, "report", "--journal", str(path), "--json", str(target))
    assert_no_crash(result.stdout.str() + result.stderr.str())
    assert result.ret == 2
    assert str(target) in result.stderr.str()


# -- D20 ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("arg", "named"), [
    ("--poolchaos-json=", "--poolchaos-json"),
    ("--poolchaos-markdown=", "--poolchaos-markdown"),
    ("--poolchaos-leaks=", "--poolchaos-leaks"),
    ("--poolchaos-watch=no_such_module_xyz:SETTINGS", "no_such_module_xyz"),
    ("--poolchaos-watch=os:no_such_attr_xyz", "no_such_attr_xyz"),
    ("--poolchaos-disable-rules=no.such.rule", "no.such.rule"),
    ("--poolchaos-cleanup-grace=1e308", "--poolchaos-cleanup-grace"),
    ("--poolchaos-json=afile/r.json", "--poolchaos-json"),
    ("--poolchaos-markdown=afile/r.md", "--poolchaos-markdown"),
], ids=["empty-json", "empty-markdown", "empty-leaks", "watch-no-module", "watch-no-attr",
        "unknown-rule", "grace-1e308", "json-unwritable", "markdown-unwritable"])
def test_bad_input_is_a_usage_error_at_start_up(pytester, arg, named):
    (pytester.path / "afile").write_text("a file, not a directory\n")
    pytester.makepyfile("def test_fail():\n    assert 1 == 2\n")
    result = pytester.runpytest_inprocess(*PLUGIN, arg)
    errors = result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    assert named in errors
    assert re.search(r"--poolchaos-[a-z-]+", errors), "the option is named"
    assert_no_crash(result.stdout.str() + errors)


def test_checking_a_report_path_leaves_nothing_behind(pytester):
    # The start-up check tries to create a file where the report will go; it must not stay.
    out = pytester.mkdir("out")
    pytester.makepyfile("def test_pass():\n    pass\n")
    result = pytester.runpytest_inprocess(*PLUGIN, "--poolchaos-json=out/r.json",
                                          "--poolchaos-markdown=out/r.md")
    assert result.ret == pytest.ExitCode.OK
    assert sorted(p.name for p in out.iterdir()) == ["r.json", "r.md"]
