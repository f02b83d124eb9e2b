"""JUnit XML (``--junitxml``): the diagnosis as ``<property>`` elements of each ``<testcase>``.

Every CI system reads JUnit XML, so the category, confidence, verdict, polluter and first
suggestion of a failure, and the leaks of any test, go there too:

* from the teardown report's payload, as its ``user_properties``, just before pytest's
  junitxml reads them (in the process that writes the XML: a serial run or the xdist
  controller, so nothing is added to the worker's per-test path);
* at session end, on the controller, the verdicts that reruns and history refined replace
  those first values in the XML pytest is about to write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from ..guard import contained
from ..history.keys import key_of, key_of_junit
from ..history.stats import history_phrase
from ..model import PAYLOAD_ATTR
from ..sanitize import safe_text

if TYPE_CHECKING:
    from ..model import SessionResult, TestRecord

__all__ = ["PREFIX", "JunitProperties", "properties", "refresh"]

PREFIX = "poolchaos."
_SUGGESTION_CHARS = 500  # a property is one attribute: the whole advice is in the JSON


def properties(diagnosis: Mapping[str, Any] | None, leaks: Sequence[Mapping[str, Any]],
               history: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """Name/value pairs from the JSON forms of a diagnosis, its leaks and its history."""
    out: list[tuple[str, str]] = []
    if diagnosis:
        out += [(f"{PREFIX}category", str(diagnosis["category"])),
                (f"{PREFIX}confidence", f"{float(diagnosis['confidence']):.2f}"),
                (f"{PREFIX}verdict", str(diagnosis.get("verdict") or "unknown"))]
        if diagnosis.get("polluter"):
            out.append((f"{PREFIX}polluter", str(diagnosis["polluter"])))
        suggestions = diagnosis.get("suggestions") or ()
        if suggestions:
            out.append((f"{PREFIX}suggestion", str(suggestions[0]["text"])[:_SUGGESTION_CHARS]))
    if phrase := history_phrase(history):
        out.append((f"{PREFIX}history", phrase))
    out += [(f"{PREFIX}leak", f"{leak['kind']}: {leak['detail']}") for leak in leaks]
    # the XML is an output like any other: verdicts refined after the session (reruns) too
    return [(name, safe_text(value)) for name, value in out]


class JunitProperties:
    """Registered with ``--junitxml`` where the XML is written."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        wire = report.__dict__.get(PAYLOAD_ATTR)
        if wire and report.when == "teardown":
            with contained("junit properties"):
                report.user_properties.extend(
                    properties(wire.get("diagnosis"), wire.get("leaks", ())))


def record_properties(record: TestRecord) -> list[tuple[str, str]]:
    return properties(record.diagnosis.to_json() if record.diagnosis else None,
                      [leak.to_json() for leak in record.leaks], record.history)


def refresh(config: pytest.Config, result: SessionResult) -> None:
    """Rewrite our properties of diagnosed tests in the XML pytest has not yet written."""
    from xml.etree import ElementTree

    from _pytest.junitxml import bin_xml_escape, xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    by_key = {key_of(r.nodeid): r for r in result.records.values() if r.diagnosis is not None}
    prefix = f"{xml.prefix}." if getattr(xml, "prefix", None) else ""
    for reporter in xml.node_reporters_ordered:
        # A finished test case is already an XML element (its reporter kept only that).
        element = reporter.to_xml()
        classname = str(element.get("classname", "")).removeprefix(prefix)
        record = by_key.get(key_of_junit(classname, str(element.get("name", ""))))
        if record is None:
            continue
        holder = element.find("properties")
        if holder is None:
            holder = ElementTree.Element("properties")
            element.insert(0, holder)
        for old in [p for p in holder if str(p.get("name", "")).startswith(PREFIX)]:
            holder.remove(old)
        for name, value in record_properties(record):
            holder.append(ElementTree.Element("property", name=name, value=bin_xml_escape(value)))
