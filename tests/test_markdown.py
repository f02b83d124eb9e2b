"""CI outputs: the Markdown job summary and GitHub annotations."""

from __future__ import annotations

from pytest_poolchaos.controller.session import SessionResult
from pytest_poolchaos.controller.session import TestRecord as Record
from pytest_poolchaos.model import Category, Diagnosis, Leak, Suggestion, Verdict
from pytest_poolchaos.report import github, markdown

SECRET = "hunter2-very-secret"


def _result() -> SessionResult:
    diagnosis = Diagnosis(
        category=Category.CONFIG_POLLUTION, confidence=0.9,
        reasons=("t.py::test_env left os.environ['MODE'] = 'a|b' (was unset)",
                  f"token was {SECRET}"),
        suggestions=(Suggestion("Use monkeypatch.setenv('MODE', ...) | 100% sure, line\nbreak"),),
        verdict=Verdict.ORDER_DEPENDENT, pass_rate=1.0, reruns=2, polluter="t.py::test_env")
    records = {
        "t.py::test_env": Record("t.py::test_env", leaks=(Leak("env", "os.environ['MODE']"),)),
        "t.py::test_victim": Record("t.py::test_victim", location=("t.py", 9, "test_victim"),
                                    outcome="failed", diagnosis=diagnosis),
        "t.py::test_slow": Record("t.py::test_slow", duration_s=0.9, timeout_s=1.0),
    }
    return SessionResult(records=records, args=[], workers=0, start=0.0,
                         environ={"API_TOKEN": SECRET}, problems=["Rec._x: KeyError: 'k'"])


def test_markdown_tables():
    text = markdown.build(_result())
    assert text.startswith("## poolchaos\n\n3 tests, 1 failure (1 config-pollution), 1 leak")
    assert "| Test | Category | Confidence | Verdict | First suggestion |" in text
    assert ("| `t.py::test_victim` | config-pollution | 0.90 | order-dependent (100% passed), "
            "polluter `t.py::test_env` | Use monkeypatch.setenv('MODE', ...) \\| 100% sure, "
            "line break |") in text
    assert "### Leaks" in text
    assert "| `t.py::test_env` | env | os.environ['MODE'] |" in text
    assert "| `t.py::test_slow` | 0.90 s | 1 s |" in text
    assert "### Plugin problems" in text
    assert SECRET not in text


def test_markdown_for_a_green_run_is_one_line():
    result = SessionResult(records={"t.py::test_a": Record("t.py::test_a")}, args=[],
                           workers=0, start=0.0)
    assert markdown.build(result) == "## poolchaos\n\npoolchaos: 1 test, no failures, no leaks\n"


def test_annotation_escapes_and_redacts():
    (command,) = github.commands(_result())
    head, message = command.split("::", 2)[1:]
    assert head == "error file=t.py,line=10,title=poolchaos config-pollution"
    assert "\n" not in command
    assert "\r" not in command
    assert "100%25 sure, line%0Abreak" in message
    assert message.startswith("t.py::test_victim: config-pollution (confidence 0.90")
    assert "polluter: t.py::test_env" in message
    assert SECRET not in message
    assert "***" in message


def test_escaping_rules():
    assert github.escape_data("50% a\r\nb") == "50%25 a%0D%0Ab"
    assert github.escape_property("a:b,c%") == "a%3Ab%2Cc%25"


def test_markdown_file_and_auto_annotations_in_a_run(chaostester, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    chaostester.pytester.makepyfile(
        """
        def test_ok():
            pass

        def test_bad():
            got = 3
            assert got == 4
        """
    )
    run = chaostester.run("--poolchaos-markdown=out/summary.md")
    text = (chaostester.path / "out" / "summary.md").read_text()
    assert "| `test_markdown_file_and_auto_annotations_in_a_run.py::test_bad` |" in text
    assert not list((chaostester.path / "out").glob(".*.tmp"))
    errors = [line for line in run.result.stdout.lines if line.startswith("::error ")]
    assert len(errors) == 1
    assert f"title=poolchaos {run.category('test_bad')}::" in errors[0]
