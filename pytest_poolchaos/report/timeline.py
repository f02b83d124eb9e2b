"""What ran at the same time as each failure, on other workers.

Workers of one run share a machine and so one clock (``time.time()`` taken by the recorder),
which makes start/stop comparable across processes. Tests on the failure's own worker ran
before or after it, never alongside, so only other workers count.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model import SessionResult, TestRecord

__all__ = ["alongside", "render_timeline"]

TOP = 5
FAILED = ("failed", "error")
_FAILED_MARK = "#"
_MARKS = string.ascii_uppercase + string.ascii_lowercase + string.digits


def alongside(records: Mapping[str, TestRecord],
              top: int = TOP) -> dict[str, list[tuple[str, str | None, float]]]:
    """Per failed nodeid: (other nodeid, its worker, overlap seconds), most overlap first."""
    timed = sorted(_timed(records.values()), key=lambda record: record.start or 0.0)
    result: dict[str, list[tuple[str, str | None, float]]] = {}
    for failed in timed:
        if failed.outcome not in FAILED:
            continue
        found = sorted(_overlapping(failed, timed), key=lambda item: -item[2])[:top]
        if found:
            result[failed.nodeid] = found
    return result


def _timed(records: Iterable[TestRecord]) -> Iterable[TestRecord]:
    return (r for r in records if r.start is not None and r.stop is not None and r.worker)


def _overlapping(failed: TestRecord, timed: list[TestRecord]
                 ) -> Iterable[tuple[str, str | None, float]]:
    start, stop = _span(failed)
    for other in timed:
        other_start, other_stop = _span(other)
        if other_start >= stop:
            break  # sorted by start: nothing later can overlap
        if other.worker == failed.worker:
            continue
        overlap = min(stop, other_stop) - max(start, other_start)
        if overlap > 0:
            yield other.nodeid, other.worker, round(overlap, 6)


def render_timeline(result: SessionResult, nodeid: str, width: int = 60) -> str:
    """Plain-text lanes, one per worker, around the failure ``nodeid``; "" when unknown.

    The failed test is drawn with ``#``, the others with a letter explained below the lanes.
    """
    failed = result.records.get(nodeid)
    if failed is None or failed.start is None or failed.stop is None or not failed.worker:
        return ""
    span = max(failed.stop - failed.start, 1e-3)
    low, high = failed.start - span / 2, failed.stop + span / 2
    records = [r for r in _timed(result.records.values())
               if r.start is not None and r.stop is not None and r.start < high and r.stop > low]
    workers = sorted({r.worker for r in records if r.worker}, key=_worker_order)
    bars = max(10, width - max(len(w) for w in workers) - 3)
    scale = bars / (high - low)
    lanes = {worker: [" "] * bars for worker in workers}
    legend: list[str] = []
    for record in sorted(records, key=lambda r: r.start or 0.0):
        mark = _FAILED_MARK if record is failed else _MARKS[len(legend) % len(_MARKS)]
        if record is not failed:
            legend.append(f"  {mark} = {record.nodeid} ({record.outcome})")
        start, stop = _span(record)
        first = max(0, int((start - low) * scale))
        last = min(bars, max(first + 1, int((stop - low) * scale)))
        lanes[str(record.worker)][first:last] = [mark] * (last - first)
    label = max(len(w) for w in workers)
    lines = [f"{worker:<{label}} |{''.join(lane)}|" for worker, lane in lanes.items()]
    lines.append(f"{'':<{label}}  {_FAILED_MARK} = {nodeid} ({failed.outcome}); "
                 f"{high - low:.2f} s shown")
    return "\n".join(lines + legend)


def _span(record: TestRecord) -> tuple[float, float]:
    # only called on records _timed() kept, which have both
    return record.start or 0.0, record.stop or 0.0


def _worker_order(worker: str) -> tuple[int, str]:
    digits = "".join(ch for ch in worker if ch.isdigit())
    return (int(digits) if digits else 0, worker)
