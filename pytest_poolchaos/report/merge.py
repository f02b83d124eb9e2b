"""``poolchaos merge``: one report from the JSON reports of CI shards.

Shards (a GitHub Actions matrix, pytest-split, several xdist hosts) each write their own
``poolchaos-report/1`` file. The merged report unites their tests, recomputes the summary,
keeps every shard's timeline apart (each worker becomes ``<shard>:<worker>``, a serial shard
one lane named after the shard) and names its inputs in ``session.shards``. Works on the JSON
dicts alone: nothing here knows the plugin's classes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .json import SCHEMA

__all__ = ["MergeError", "load", "merge", "shard_names"]

_CATEGORIES = ("timeout", "expectation", "lifecycle", "config-pollution", "mock-gap",
               "unclassified")
# When a test ran in two shards, the entry that says most is kept.
_WEIGHT = {"error": 5, "failed": 4, "xpassed": 3, "passed": 2, "xfailed": 1, "skipped": 0}


class MergeError(Exception):
    """An input that cannot be merged; the message names the file."""


def load(path: Path) -> dict[str, Any]:
    """One shard's report, or a MergeError saying in one line what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MergeError(f"{path}: cannot read it ({error.strerror})") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise MergeError(f"{path}: not JSON ({error})") from None
    check(data, str(path))
    return data  # type: ignore[no-any-return]


def check(data: object, name: str) -> None:
    if not isinstance(data, dict):
        raise MergeError(f"{name}: not a poolchaos report (a JSON {type(data).__name__})")
    if data.get("schema") != SCHEMA:
        raise MergeError(f"{name}: schema {data.get('schema')!r} is not {SCHEMA!r}; "
                         f"only reports of the same schema can be merged")
    for key, kind in (("tests", list), ("session", dict), ("summary", dict)):
        if not isinstance(data.get(key), kind):
            raise MergeError(f"{name}: {key!r} is missing or not a {kind.__name__}")


def shard_names(paths: Sequence[str]) -> list[str]:
    """File stems (``shard-1``), or the paths as given when two stems are alike."""
    stems = [Path(path).stem for path in paths]
    return stems if len(set(stems)) == len(stems) else list(paths)


def merge(shards: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """One report from (shard name, report) pairs, in the order given."""
    if not shards:
        raise MergeError("nothing to merge")
    for name, data in shards:
        check(data, name)
    tests = _tests(shards)
    first = shards[0][1]
    return {
        "schema": SCHEMA,
        "created": max(str(data.get("created") or "") for _, data in shards),
        "plugin_version": _joined(data.get("plugin_version") for _, data in shards),
        "pytest_version": _joined(data.get("pytest_version") for _, data in shards),
        "python": _joined(data.get("python") for _, data in shards),
        "session": _session(shards),
        "summary": _summary(tests, first),
        "tests": tests,
    }


def _tests(shards: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    kept: dict[str, dict[str, Any]] = {}
    for name, data in shards:
        for test in data["tests"]:
            entry = {**test, "worker": f"{name}:{test['worker']}" if test.get("worker")
                     else name}
            earlier = kept.get(entry["nodeid"])
            if earlier is None or _weight(entry) > _weight(earlier):
                kept[entry["nodeid"]] = entry
    return list(kept.values())


def _weight(test: Mapping[str, Any]) -> int:
    return _WEIGHT.get(str(test.get("outcome")), 0)


def _summary(tests: Sequence[Mapping[str, Any]], first: Mapping[str, Any]) -> dict[str, Any]:
    count = {outcome: 0 for outcome in ("passed", "failed", "skipped", "error")}
    categories = dict.fromkeys(_CATEGORIES, 0)
    for name in first["summary"].get("by_category") or {}:
        categories.setdefault(name, 0)  # the order and names the plugin used
    for test in tests:
        if test.get("outcome") in count:
            count[test["outcome"]] += 1
        if test.get("diagnosis"):
            category = str(test["diagnosis"]["category"])
            categories[category] = categories.get(category, 0) + 1
    return {"tests": len(tests), "passed": count["passed"], "failed": count["failed"],
            "skipped": count["skipped"], "errors": count["error"], "by_category": categories}


def _session(shards: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    sessions = [(name, data["session"], data.get("created")) for name, data in shards]
    seeds = {session.get("randomly_seed") for _, session, _ in sessions}
    chaos = {session.get("chaos") for _, session, _ in sessions}
    out: dict[str, Any] = {
        "args": [],
        "workers": sum(int(session.get("workers") or 0) for _, session, _ in sessions),
        "duration_s": _wall_clock(sessions),
        "exitstatus": exit_status([int(session.get("exitstatus") or 0)
                                   for _, session, _ in sessions]),
        "randomly_seed": seeds.pop() if len(seeds) == 1 else None,
        "problems": [f"{name}: {problem}" for name, session, _ in sessions
                     for problem in session.get("problems") or ()],
        "shards": [name for name, _, _ in sessions],
    }
    if len(chaos) == 1 and (only := chaos.pop()) is not None:
        out["chaos"] = only
    diagnostics = [session["diagnostics"] for _, session, _ in sessions
                   if isinstance(session.get("diagnostics"), dict)]
    if diagnostics:
        out["diagnostics"] = {key: round(sum(d.get(key) or 0 for d in diagnostics), 6)
                              for key in ("subprocess_runs", "inline_runs", "seconds")}
    return out


def _wall_clock(sessions: Sequence[tuple[str, Mapping[str, Any], Any]]) -> float:
    """From the first shard's start to the last shard's end (shards run side by side)."""
    spans = []
    for _, session, created in sessions:
        end = _timestamp(created)
        duration = float(session.get("duration_s") or 0.0)
        if end is not None:
            spans.append((end - duration, end))
    if not spans:
        return max((float(s.get("duration_s") or 0.0) for _, s, _ in sessions), default=0.0)
    return round(max(0.0, max(e for _, e in spans) - min(s for s, _ in spans)), 6)


def _timestamp(created: Any) -> float | None:
    try:
        moment = datetime.fromisoformat(str(created))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def exit_status(statuses: Sequence[int]) -> int:
    """The merged run's status: the worst of the shards', "no tests" only if all say so."""
    failing = [status for status in statuses if status not in (0, 5)]
    if failing:
        return max(failing)
    return 0 if 0 in statuses else 5


def _joined(values: Any) -> str:
    return ", ".join(dict.fromkeys(str(value) for value in values if value))
