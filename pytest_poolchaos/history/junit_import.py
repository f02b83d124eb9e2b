"""Seed the history from JUnit XML files of earlier CI runs, so it is useful on day one.

One file is one run: its test cases (any ``<testsuite>`` nesting), their outcome and time, and,
when the file was written with this plugin loaded, the category and verdict it recorded in
``poolchaos.*`` properties. The run is dated by the first suite's ``timestamp`` (else the
file's modification time) and named by a hash of the file, so importing a file twice adds it
once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree

from .keys import key_of_junit, nodeid_of_junit
from .stats import FAILED
from .store import Result, RunInfo

__all__ = ["JunitError", "read"]

_WORSE = {"error": 5, "failed": 4, "xpassed": 3, "passed": 2, "xfailed": 1, "skipped": 0}


class JunitError(Exception):
    """A file that is not usable JUnit XML; the message is one line naming the file."""


def read(path: Path) -> tuple[RunInfo, list[Result]]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise JunitError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        root = ElementTree.fromstring(raw)
    except ElementTree.ParseError as error:
        raise JunitError(f"{path}: not well-formed XML ({error})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JunitError(f"{path}: not JUnit XML (the root element is <{root.tag}>, expected "
                         f"<testsuites> or <testsuite>)")
    results = _dedup(_case(case) for case in root.iter("testcase"))
    if not results:
        raise JunitError(f"{path}: JUnit XML without a single <testcase>")
    run = RunInfo(id=f"junit-{hashlib.sha256(raw).hexdigest()[:24]}",
                  created=_created(root, path), source=f"junit:{path.name}")
    return run, results


def _case(case: ElementTree.Element) -> Result:
    classname, name = case.get("classname", ""), case.get("name", "")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    outcome = _outcome(case)
    return Result(
        nodeid=nodeid_of_junit(classname, name, case.get("file")),
        outcome=outcome,
        duration_s=_seconds(case.get("time")),
        category=props.get("poolchaos.category") if outcome in FAILED else None,
        verdict=props.get("poolchaos.verdict") if outcome in FAILED else None,
        key=key_of_junit(classname, name),
    )


def _outcome(case: ElementTree.Element) -> str:
    tags = {child.tag: child for child in case}
    if "error" in tags:
        return "error"
    if "failure" in tags:
        return "failed"
    if "skipped" in tags:
        return "xfailed" if tags["skipped"].get("type") == "pytest.xfail" else "skipped"
    return "passed"


def _dedup(results: Iterable[Result]) -> list[Result]:
    # A test listed twice (a rerun plugin's attempts) counts once, by its worst attempt.
    kept: dict[str, Result] = {}
    for result in results:
        earlier = kept.get(result.test_key)
        if earlier is None or _WORSE.get(result.outcome, 0) > _WORSE.get(earlier.outcome, 0):
            kept[result.test_key] = result
    return list(kept.values())


def _seconds(text: str | None) -> float:
    try:
        value = float(text or 0)
    except ValueError:
        return 0.0
    return value if value >= 0 else 0.0


def _created(root: ElementTree.Element, path: Path) -> str:
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for suite in suites:
        stamp = suite.get("timestamp")
        if stamp:
            try:
                moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.astimezone()  # a naive stamp is the writer's local time
            return moment.astimezone(timezone.utc).isoformat(timespec="seconds")
    mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return mtime.isoformat(timespec="seconds")
