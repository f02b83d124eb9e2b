"""The JSON report, schema ``poolchaos-report/1`` (contract: poolchaos-report.schema.json)."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..sanitize import redact_texts, scrub

if TYPE_CHECKING:
    from ..model import SessionResult, TestRecord

SCHEMA = "poolchaos-report/1"


def build(result: SessionResult) -> dict[str, Any]:
    """The whole report as plain data; pure, so it is tested without a pytest run."""
    records = list(result.records.values())
    return scrub({
        "schema": SCHEMA,
        "created": datetime.fromtimestamp(result.stop or result.start, timezone.utc).isoformat(),
        "plugin_version": _version(),
        "pytest_version": pytest.__version__,
        "python": platform.python_version(),
        "session": {
            "args": redact_texts(result.args),
            "workers": result.workers,
            "duration_s": round(max(0.0, result.stop - result.start), 6),
            "exitstatus": result.exitstatus,
            "randomly_seed": result.randomly_seed,
            "problems": list(result.problems),
            "chaos": result.chaos,
        },
        "summary": _summary(records, result.by_category()),
        "tests": [_test(record) for record in records],
    }, result.environ)


def _summary(records: list[TestRecord], by_category: dict[str, int]) -> dict[str, Any]:
    count = {outcome: 0 for outcome in ("passed", "failed", "skipped", "error")}
    for record in records:
        if record.outcome in count:
            count[record.outcome] += 1
    return {
        "tests": len(records),
        "passed": count["passed"],
        "failed": count["failed"],
        "skipped": count["skipped"],
        "errors": count["error"],
        "by_category": by_category,
    }


def _test(record: TestRecord) -> dict[str, Any]:
    return {
        "nodeid": record.nodeid,
        "outcome": record.outcome,
        "when": record.when if record.when in ("setup", "call", "teardown") else None,
        "duration_s": round(max(0.0, record.duration_s), 6),
        "worker": record.worker,
        "diagnosis": record.diagnosis.to_json() if record.diagnosis else None,
        "leaks": [leak.to_json() for leak in record.leaks],
        "start": record.start,
        "stop": record.stop,
        "timeout_s": record.timeout_s,
        "near_timeout": record.near_timeout,
        "history": record.history,
    }


def _version() -> str:
    from .. import __version__

    return str(__version__)


def write(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a crash leaves the old file or none, never half a JSON file."""
    from .files import write_text

    write_text(path, json.dumps(data, indent=2, default=str) + "\n")
