"""A self-contained HTML report, drawn from the JSON report dict (``poolchaos-report/1``).

One file, no network: styles and script are inline and a Content-Security-Policy forbids
anything else, so it opens the same from a CI artifact on a laptop offline or on a phone.
``--poolchaos-html`` and ``poolchaos html REPORT.json`` both call ``render`` on the same dict;
nothing here knows the plugin's classes.

The page: counts per outcome and category, a card per failure (evidence, suggestions, reruns,
polluter, history with a sparkline of recent runs, what ran alongside), the leaks, tests slower
than their history, near-timeouts, and a timeline with one lane per worker (per shard and
worker in a merged report) where each test is a bar. The markup is complete without the
script; the script only makes the timeline answer hover, click and ``#t-N`` links with what
ran alongside the chosen test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any, NamedTuple

from ..history.stats import history_phrase

__all__ = ["render", "write"]

Test = Mapping[str, Any]


class Span(NamedTuple):
    """When and where a test ran. ``host`` is the shard in a merged report: tests of two
    shards ran on different machines, so they never count as running alongside."""

    start: float
    stop: float
    lane: str
    host: str = ""


Timed = Mapping[int, Span]

CATEGORIES = ("timeout", "expectation", "lifecycle", "config-pollution", "mock-gap", "race",
              "unclassified")
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
FAILED = ("failed", "error")
ALONGSIDE = 5  # per card; the timeline shows them all

#: Nothing but what is in the file: no fetch, font, image or frame from anywhere.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

# Timeline geometry, in SVG user units (the drawing scales to the page's width).
WIDTH, LABEL, LANE, BAR, AXIS = 1000.0, 120.0, 24.0, 16.0, 22.0
MIN_BAR = 0.8


def render(data: Mapping[str, Any]) -> str:
    """The whole page for one report."""
    tests: list[Test] = list(data.get("tests") or ())
    failures = [(i, t) for i, t in enumerate(tests) if t.get("diagnosis")]
    timed = _timed(tests, (data.get("session") or {}).get("shards") or ())
    body = "\n".join([
        _header(data, tests),
        _nav(failures, tests),
        "<main>",
        _timeline(tests, timed),
        _failures(failures, tests, timed),
        _leaks(tests, timed),
        _slower(tests, timed),
        _near_timeouts(tests, timed),
        _problems(data),
        "</main>",
        f"<footer>pytest-poolchaos {_e(data.get('plugin_version', ''))} · "
        f"{_e(data.get('schema', ''))}</footer>",
    ])
    summary = data.get("summary") or {}
    title = (f"poolchaos: {summary.get('tests', len(tests))} tests, "
             f"{len(failures)} diagnosed failures")
    return _PAGE.format(title=_e(title), policy=POLICY, css=_CSS, body=body, script=_SCRIPT)


def write(path: Path, data: Mapping[str, Any]) -> None:
    """Render and write atomically: a reader sees the old file or the new one."""
    from .files import write_text

    write_text(path, render(data))


# -- header and navigation ---------------------------------------------------------------------


def _header(data: Mapping[str, Any], tests: Sequence[Test]) -> str:
    session = data.get("session") or {}
    summary = data.get("summary") or {}
    facts = [f"created {_e(str(data.get('created', ''))[:19].replace('T', ' '))} UTC",
             f"{float(session.get('duration_s') or 0):.1f} s",
             f"{session.get('workers') or 0} xdist workers" if session.get("workers")
             else "serial",
             f"pytest {_e(data.get('pytest_version', ''))}",
             f"Python {_e(data.get('python', ''))}"]
    if session.get("shards"):
        facts.append(f"merged from {len(session['shards'])} shards: "
                     + ", ".join(f"<code>{_e(s)}</code>" for s in session["shards"]))
    if session.get("args"):
        facts.append(f"<code>pytest {_e(' '.join(map(str, session['args'])))}</code>")
    counts = _outcome_counts(tests)
    outcome_chips = "".join(
        f'<span class="count o-{name}" data-outcome="{name}" data-count="{n}">'
        f"<b>{n}</b> {name}</span>" for name, n in counts.items() if n or name == "failed")
    by_category = summary.get("by_category") or {}
    category_chips = "".join(
        f'<span class="chip c-{_e(name)}{"" if n else " zero"}" data-category="{_e(name)}" '
        f'data-count="{n}">'
        f"{_e(name)} <b>{n}</b></span>"
        for name, n in _ordered(by_category))
    return (f'<header><h1>poolchaos report</h1><p class="facts">{" · ".join(facts)}</p>'
            f'<div class="counts" id="counts"><span class="count total" data-count='
            f'"{summary.get("tests", len(tests))}"><b>{summary.get("tests", len(tests))}</b> '
            f"tests</span>{outcome_chips}</div>"
            f'<div class="categories" id="categories">{category_chips}</div></header>')


def _outcome_counts(tests: Sequence[Test]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for test in tests:
        outcome = str(test.get("outcome"))
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _ordered(by_category: Mapping[str, Any]) -> list[tuple[str, int]]:
    known = [name for name in CATEGORIES if name in by_category]
    extra = [name for name in by_category if name not in CATEGORIES]
    return [(name, int(by_category[name])) for name in known + extra]


def _nav(failures: Sequence[tuple[int, Test]], tests: Sequence[Test]) -> str:
    leaks = sum(len(t.get("leaks") or ()) for t in tests)
    links = [("timeline", "Timeline"), ("failures", f"Failures ({len(failures)})"),
             ("leaks", f"Leaks ({leaks})")]
    return "<nav>" + " ".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in links) + \
        "</nav>"


# -- failures ----------------------------------------------------------------------------------


def _failures(failures: Sequence[tuple[int, Test]], tests: Sequence[Test],
              timed: Timed) -> str:
    if not failures:
        return '<section id="failures"><h2>Failures</h2><p class="none">No failures.</p>' \
               "</section>"
    cards = "\n".join(_card(index, test, tests, timed) for index, test in failures)
    return f'<section id="failures"><h2>Failures</h2>{cards}</section>'


def _card(index: int, test: Test, tests: Sequence[Test],
          timed: Timed) -> str:
    diagnosis = test["diagnosis"]
    category = str(diagnosis.get("category", "unclassified"))
    facts = [f"confidence {float(diagnosis.get('confidence') or 0):.2f}", _verdict(diagnosis),
             f"{test.get('outcome')} in {test.get('when') or '?'}",
             f"{float(test.get('duration_s') or 0):.2f} s"]
    if test.get("worker"):
        facts.append(f"on <code>{_e(test['worker'])}</code>")
    parts = [f'<article class="card c-{_e(category)}" id="f-{index}" '
             f'data-nodeid="{_e(test["nodeid"])}" data-category="{_e(category)}">',
             f'<header><span class="badge c-{_e(category)}">{_e(category)}</span>'
             f'<h3><code>{_e(test["nodeid"])}</code></h3></header>',
             f'<p class="facts">{" · ".join(facts)}</p>']
    parts += _history(test)
    if diagnosis.get("polluter"):
        parts.append(f'<p class="polluter">polluter: <code>{_e(diagnosis["polluter"])}</code>'
                     f"{_search(diagnosis.get('polluter_search'))}</p>")
    parts += _list("Evidence", [_e(line) for line in diagnosis.get("evidence") or ()], "ol")
    parts += _suggestions(diagnosis.get("suggestions") or ())
    parts += _attempts(diagnosis.get("attempts") or ())
    parts += _alongside(index, tests, timed)
    if index in timed:
        parts.append(f'<p class="jump"><a href="#t-{index}">show in the timeline</a></p>')
    parts.append("</article>")
    return "\n".join(parts)


def _verdict(diagnosis: Mapping[str, Any]) -> str:
    verdict = str(diagnosis.get("verdict") or "unknown")
    reruns = int(diagnosis.get("reruns") or 0)
    if not reruns:
        return "flaky by its history (not rerun)" if verdict == "flaky" else \
            "verdict unknown (not rerun)"
    rate = diagnosis.get("pass_rate")
    passed = f", passed {round(float(rate) * reruns)} of {reruns} reruns" \
        if rate is not None else f" after {reruns} reruns"
    return f'<span class="verdict v-{_e(verdict)}">{_e(verdict)}</span>{passed}'


def _history(test: Test) -> list[str]:
    history = test.get("history")
    phrase = history_phrase(history)
    if not history or phrase is None:
        return []
    return [f'<p class="history">history: {_e(phrase)} {_sparkline(history, test)}</p>']


def _sparkline(history: Mapping[str, Any], test: Test) -> str:
    """One square per recent run, oldest first, this run last and outlined."""
    recent = [str(o) for o in history.get("recent") or ()] + [str(test.get("outcome"))]
    size, gap = 8, 2
    squares = "".join(
        f'<rect x="{i * (size + gap)}" y="1" width="{size}" height="{size}" '
        f'class="o-{_e(outcome)}{" now" if i == len(recent) - 1 else ""}"/>'
        for i, outcome in enumerate(recent))
    label = f"recent runs, oldest first: {', '.join(recent[:-1])}; this run: {recent[-1]}"
    return (f'<svg class="spark" data-runs="{len(recent)}" role="img" aria-label="{_e(label)}" '
            f'width="{len(recent) * (size + gap)}" height="{size + 2}" '
            f'viewBox="0 0 {len(recent) * (size + gap)} {size + 2}">{squares}</svg>')


def _search(search: Mapping[str, Any] | None) -> str:
    if not search:
        return ""
    return (f" (found by {_e(search.get('method', 'search'))}, {int(search.get('runs') or 0)} "
            f"runs, {float(search.get('seconds') or 0):.1f} s)")


def _suggestions(suggestions: Iterable[Mapping[str, Any]]) -> list[str]:
    items = []
    for suggestion in suggestions:
        detail = suggestion.get("detail")
        items.append(_e(suggestion.get("text", "")) +
                     (f"<pre>{_e(detail)}</pre>" if detail else ""))
    return _list("Suggestions", items, "ol")


def _attempts(attempts: Sequence[Mapping[str, Any]]) -> list[str]:
    if not attempts:
        return []
    rows = [(_e(a.get("mode", "")), f'<span class="o-{_e(a.get("outcome", ""))}">'
             f'{_e(a.get("outcome", ""))}</span>', f"{float(a.get('duration_s') or 0):.2f} s",
             _e(_first_line(str(a.get("message") or ""))))
            for a in attempts]
    return [f"<details><summary>Reruns ({len(attempts)})</summary>"
            + _table(("mode", "outcome", "duration", "message"), rows) + "</details>"]


def _alongside(index: int, tests: Sequence[Test],
               timed: Timed) -> list[str]:
    others = overlapping(index, timed)
    if not others:
        return []
    items = [f'<a href="#t-{other}"><code>{_e(tests[other]["nodeid"])}</code></a> '
             f"({_e(tests[other].get('outcome'))}) on <code>{_e(timed[other].lane)}</code>, "
             f"{overlap:.2f} s overlap" for other, overlap in others[:ALONGSIDE]]
    if len(others) > ALONGSIDE:
        items.append(f"… and {len(others) - ALONGSIDE} more: see the timeline")
    return _list("Ran alongside (other workers)", items, "ul")


def overlapping(index: int, timed: Timed
                ) -> list[tuple[int, float]]:
    """Tests on other lanes of the same machine whose run overlapped test ``index``, most
    overlap first."""
    if index not in timed:
        return []
    me = timed[index]
    found = [(other, min(me.stop, it.stop) - max(me.start, it.start))
             for other, it in timed.items()
             if it.lane != me.lane and it.host == me.host and it.start < me.stop
             and it.stop > me.start]
    return sorted(found, key=lambda item: -item[1])


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else ""


# -- the timeline --------------------------------------------------------------------------------


def _timed(tests: Sequence[Test], shards: Sequence[str] = ()) -> dict[int, Span]:
    """Per test index: when and on which lane it ran, for tests that carry both times."""
    out = {}
    for index, test in enumerate(tests):
        start, stop = test.get("start"), test.get("stop")
        if isinstance(start, int | float) and isinstance(stop, int | float) and stop >= start:
            lane = str(test.get("worker") or "main")
            host = next((s for s in shards if lane == s or lane.startswith(f"{s}:")), "")
            out[index] = Span(float(start), float(stop), lane, host)
    return out


def _lanes(timed: Timed) -> list[str]:
    def order(lane: str) -> tuple[str, int, str]:
        shard, _, worker = lane.rpartition(":")
        digits = "".join(ch for ch in worker if ch.isdigit())
        return (shard, int(digits) if digits else -1, worker)

    return sorted({span.lane for span in timed.values()}, key=order)


def _timeline(tests: Sequence[Test], timed: Timed) -> str:
    head = '<section id="timeline"><h2>Timeline</h2>'
    if not timed:
        return head + '<p class="none">No test in this report carries start and stop times.' \
                      "</p></section>"
    lanes = _lanes(timed)
    t0 = min(when.start for when in timed.values())
    span = max(max(when.stop for when in timed.values()) - t0, 1e-6)
    scale = (WIDTH - LABEL - 8) / span
    height = len(lanes) * LANE + AXIS
    rows = [_lane_label(lane, n) for n, lane in enumerate(lanes)]
    rows += _axis(span, scale, len(lanes) * LANE)  # under the bars
    rows += [_bar(index, tests[index], timed[index], t0, scale, lanes.index(timed[index].lane))
             for index in sorted(timed, key=lambda i: timed[i].start)]
    svg = (f'<svg id="lanes" class="lanes" viewBox="0 0 {WIDTH:g} {height:g}" '
           f'data-lanes="{len(lanes)}" data-t0="{t0:.6f}" role="img" '
           f'aria-label="timeline: {len(lanes)} lanes, {len(timed)} tests">'
           + "".join(rows) + "</svg>")
    legend = ('<p class="legend"><span class="key o-passed"></span>passed '
              '<span class="key o-failed"></span>failed or error '
              '<span class="key o-skipped"></span>skipped '
              '<span class="key leak"></span>left something behind '
              "· hover or tap a bar to see what ran alongside</p>")
    detail = ('<div id="detail" class="detail" aria-live="polite"><p class="none">Choose a '
              "test in the timeline.</p></div>")
    return f'{head}{legend}<div class="scroll">{svg}</div>{detail}</section>'


def _lane_label(lane: str, n: int) -> str:
    y = n * LANE
    return (f'<g class="lane" data-lane="{_e(lane)}"><rect class="lane-bg" x="0" y="{y:g}" '
            f'width="{WIDTH:g}" height="{LANE:g}"/><text x="6" y="{y + LANE / 2 + 4:g}">'
            f"{_e(_short_lane(lane))}</text></g>")


def _short_lane(lane: str) -> str:
    return lane if len(lane) <= 16 else "…" + lane[-15:]


def _bar(index: int, test: Test, when: Span, t0: float, scale: float, lane: int) -> str:
    start, stop, lane_name = when.start, when.stop, when.lane
    x = LABEL + (start - t0) * scale
    width = max(MIN_BAR, (stop - start) * scale)
    y = lane * LANE + (LANE - BAR) / 2
    outcome = str(test.get("outcome"))
    leaks = test.get("leaks") or ()
    classes = f"bar o-{_e(outcome)}" + (" leaky" if leaks else "")
    category = (test.get("diagnosis") or {}).get("category")
    title = f"{test['nodeid']}: {outcome}" + (f" ({category})" if category else "") + \
        f", {stop - start:.2f} s on {lane_name}" + (f", {len(leaks)} leak(s)" if leaks else "")
    mark = (f'<path class="leak-mark" d="M{x + width:.2f} {y - 3:.2f} l4 0 l-2 4 z"/>'
            if leaks else "")
    return (f'<rect id="t-{index}" class="{classes}" x="{x:.2f}" y="{y:g}" width="{width:.2f}" '
            f'height="{BAR:g}" data-start="{start - t0:.6f}" data-stop="{stop - t0:.6f}" '
            f'data-lane="{_e(lane_name)}" data-host="{_e(when.host)}" '
            f'data-nodeid="{_e(test["nodeid"])}" '
            f'data-outcome="{_e(outcome)}" data-leaks="{len(leaks)}" tabindex="0">'
            f"<title>{_e(title)}</title></rect>{mark}")


def _axis(span: float, scale: float, top: float) -> list[str]:
    step = _tick_step(span)
    ticks = []
    for n in range(int(span / step) + 1):
        x = LABEL + n * step * scale
        ticks.append(f'<line class="tick" x1="{x:.2f}" x2="{x:.2f}" y1="0" y2="{top + 4:g}"/>'
                     f'<text class="tick" x="{x:.2f}" y="{top + 16:g}">{_seconds(n * step)}'
                     "</text>")
    return ticks


def _tick_step(span: float) -> float:
    raw = span / 6
    power = 10.0 ** math.floor(math.log10(raw))
    return next(power * m for m in (1.0, 2.0, 5.0, 10.0) if power * m >= raw)


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value else "0"


# -- tables ----------------------------------------------------------------------------------------


def _leaks(tests: Sequence[Test], timed: Timed) -> str:
    rows = [(_test_link(i, t, timed), _e(leak.get("kind", "")), _e(leak.get("detail", "")))
            for i, t in enumerate(tests) for leak in t.get("leaks") or ()]
    body = _table(("test", "kind", "detail"), rows, "leak-table") if rows else \
        '<p class="none">No test left anything behind.</p>'
    return f'<section id="leaks"><h2>Leaks</h2>{body}</section>'


def _slower(tests: Sequence[Test], timed: Timed) -> str:
    rows = [(_test_link(i, t, timed), f"{float(t.get('duration_s') or 0):.2f} s",
             f"{float(t['history'].get('p50_s') or 0):.2f} s",
             f"{float(t['history'].get('p95_s') or 0):.2f} s")
            for i, t in enumerate(tests) if (t.get("history") or {}).get("slower")]
    if not rows:
        return ""
    return ('<section id="slower"><h2>Slower than their history</h2><p>Often the first sign '
            "of a coming timeout.</p>" + _table(("test", "this run", "p50", "p95"), rows) +
            "</section>")


def _near_timeouts(tests: Sequence[Test], timed: Timed) -> str:
    rows = [(_test_link(i, t, timed), f"{float(t.get('duration_s') or 0):.2f} s",
             f"{float(t.get('timeout_s') or 0):g} s")
            for i, t in enumerate(tests) if t.get("near_timeout")]
    if not rows:
        return ""
    return ('<section id="near-timeouts"><h2>Near-timeouts</h2><p>Passed, but used most of '
            "their timeout.</p>" + _table(("test", "duration", "limit"), rows) + "</section>")


def _problems(data: Mapping[str, Any]) -> str:
    problems = (data.get("session") or {}).get("problems") or ()
    if not problems:
        return ""
    return ('<section id="problems"><h2>Plugin problems</h2><p>Bugs in poolchaos, not in your '
            "tests.</p>" + "".join(_list("", [_e(p) for p in problems], "ul")) + "</section>")


def _test_link(index: int, test: Test, timed: Mapping[int, Any]) -> str:
    code = f"<code>{_e(test['nodeid'])}</code>"
    return f'<a href="#t-{index}">{code}</a>' if index in timed else code


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    head = "".join(f"<th>{_e(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f'<td data-label="{_e(name)}">{cell}</td>'
                                    for name, cell in zip(header, row, strict=True)) + "</tr>"
                   for row in rows)
    return (f'<div class="table"><table class="{css}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _list(title: str, items: Sequence[str], tag: str) -> list[str]:
    if not items:
        return []
    heading = [f"<h4>{_e(title)}</h4>"] if title else []
    return [*heading, f"<{tag}>" + "".join(f"<li>{item}</li>" for item in items) + f"</{tag}>"]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}
<script>{script}</script>
</body>
</html>
"""

_CSS = """
:root{--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#f6f8fa;--lane:#f3f4f6;
--lane2:#e9ecef;--pass:#4fae66;--fail:#d1242f;--error:#8c1d18;--skip:#b7bdc4;--xf:#8c95d9;
--leak:#e16f24;--timeout:#b58407;--expectation:#8250df;--lifecycle:#cf222e;
--config-pollution:#1b7c83;--mock-gap:#0969da;--race:#e16f24;--unclassified:#6e7781;
--pick:#0969da}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#30363d;--card:#151b23;--lane:#161b22;--lane2:#1c2128;--pass:#3b8c50;--skip:#56606b;
--timeout:#d29922;--expectation:#a371f7;--lifecycle:#f85149;--config-pollution:#39c5cf;
--mock-gap:#4493f8;--unclassified:#9198a1;--fail:#f85149;--pick:#4493f8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,sans-serif}
header,nav,main,footer{max-width:1100px;margin:0 auto;padding:0 16px}
h1{font-size:1.5rem;margin:20px 0 4px}h2{font-size:1.2rem;margin:28px 0 10px;
border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:1rem;margin:0;
overflow-wrap:anywhere}h4{margin:12px 0 4px;font-size:.9rem;color:var(--muted)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px;
overflow-x:auto;white-space:pre-wrap}
a{color:var(--pick)}
.facts{color:var(--muted);margin:4px 0;overflow-wrap:anywhere}
.counts,.categories{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0}
.count,.chip{border:1px solid var(--line);border-radius:999px;padding:2px 12px;
background:var(--card)}
.count.o-failed b,.count.o-error b{color:var(--fail)}.count.o-passed b{color:var(--pass)}
.chip{border-left:6px solid var(--c,var(--line))}.chip.zero{opacity:.55}
nav{display:flex;gap:16px;padding-top:8px;flex-wrap:wrap}
.card{border:1px solid var(--line);border-left:6px solid var(--c,var(--line));border-radius:8px;
background:var(--card);padding:12px 16px;margin:12px 0}
.card header{display:flex;gap:10px;align-items:baseline;padding:0;flex-wrap:wrap}
.badge{background:var(--c);color:#fff;border-radius:4px;padding:0 8px;font-size:.85rem;
font-weight:600;white-space:nowrap}
.c-timeout{--c:var(--timeout)}.c-expectation{--c:var(--expectation)}
.c-lifecycle{--c:var(--lifecycle)}.c-config-pollution{--c:var(--config-pollution)}
.c-mock-gap{--c:var(--mock-gap)}.c-race{--c:var(--race)}
.c-unclassified{--c:var(--unclassified)}
.verdict{font-weight:600}.v-flaky{color:var(--timeout)}.v-order-dependent{
color:var(--config-pollution)}.v-deterministic{color:var(--lifecycle)}
ol,ul{margin:4px 0;padding-left:24px}li{margin:2px 0;overflow-wrap:anywhere}
details{margin-top:8px}summary{cursor:pointer;color:var(--muted)}
.spark{vertical-align:middle;margin-left:6px}.spark rect.now{stroke:var(--fg);stroke-width:1.5}
.spark .o-passed,.spark .o-xfailed,.spark .o-xpassed{fill:var(--pass)}
.spark .o-failed{fill:var(--fail)}.spark .o-error{fill:var(--error)}
.spark .o-skipped{fill:var(--skip)}
.none{color:var(--muted)}
.table{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top;
overflow-wrap:anywhere}th{color:var(--muted);font-weight:600}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:8px}
svg.lanes{display:block;width:100%;min-width:760px;height:auto}
.lane-bg{fill:var(--lane)}.lane:nth-child(even) .lane-bg{fill:var(--lane2)}
.lane text,text.tick{fill:var(--muted);font-size:11px;font-family:ui-monospace,monospace}
line.tick{stroke:var(--line);stroke-width:.5}
.bar{fill:var(--pass);cursor:pointer;stroke:var(--bg);stroke-width:.3}
.bar.o-failed{fill:var(--fail)}.bar.o-error{fill:var(--error)}.bar.o-skipped{fill:var(--skip)}
.bar.o-xfailed,.bar.o-xpassed{fill:var(--xf)}
.bar.leaky{stroke:var(--leak);stroke-width:1.2}.leak-mark{fill:var(--leak)}
.bar:hover,.bar:focus{outline:none;stroke:var(--fg);stroke-width:1.5}
.bar.along{stroke:var(--pick);stroke-width:2}.bar.selected{stroke:var(--fg);stroke-width:2.5}
.lanes.picking .bar:not(.along):not(.selected){opacity:.35}
.legend{color:var(--muted);font-size:.9rem}.key{display:inline-block;width:12px;height:12px;
border-radius:2px;margin:0 4px -1px 8px;background:var(--pass)}.key.o-failed{
background:var(--fail)}.key.o-skipped{background:var(--skip)}.key.leak{background:var(--bg);
border:2px solid var(--leak)}
.detail{border:1px solid var(--line);border-radius:8px;padding:8px 12px;margin-top:10px;
background:var(--card)}
footer{color:var(--muted);font-size:.85rem;padding:24px 16px}
@media (max-width:640px){body{font-size:14px}.card{padding:10px}
thead{display:none}tr{display:block;border-bottom:1px solid var(--line);padding:4px 0}
td{display:block;border:0;padding:2px 4px}td::before{content:attr(data-label) ": ";
color:var(--muted)}}
"""

_SCRIPT = """
(function () {
  "use strict";
  var svg = document.getElementById("lanes");
  var detail = document.getElementById("detail");
  var bars = svg ? Array.prototype.slice.call(svg.querySelectorAll("rect.bar")) : [];
  var span = function (bar) { return [+bar.dataset.start, +bar.dataset.stop]; };

  function alongside(bar) {
    var me = span(bar), found = [];
    bars.forEach(function (other) {
      if (other === bar || other.dataset.lane === bar.dataset.lane ||
          other.dataset.host !== bar.dataset.host) { return; }
      var it = span(other), overlap = Math.min(me[1], it[1]) - Math.max(me[0], it[0]);
      if (overlap > 0) { found.push([other, overlap]); }
    });
    return found.sort(function (a, b) { return b[1] - a[1]; });
  }

  function clear(name) {
    bars.forEach(function (bar) { bar.classList.remove(name); });
  }

  function light(bar) {
    clear("along");
    if (!bar) { svg.classList.remove("picking"); return []; }
    var found = alongside(bar);
    found.forEach(function (pair) { pair[0].classList.add("along"); });
    svg.classList.add("picking");
    return found;
  }

  function line(parent, tag, text, cls) {
    var node = document.createElement(tag);
    node.textContent = text;
    if (cls) { node.className = cls; }
    parent.appendChild(node);
    return node;
  }

  function show(bar, found) {
    detail.textContent = "";
    var d = bar.dataset, seconds = (+d.stop - +d.start).toFixed(2);
    line(detail, "h3", d.nodeid).className = "picked";
    line(detail, "p", d.outcome + " on " + d.lane + ", " + seconds + " s, from " +
         (+d.start).toFixed(2) + " s" + (+d.leaks ? ", " + d.leaks + " leak(s)" : ""), "facts");
    var card = document.querySelector('article.card[data-nodeid="' + CSS.escape(d.nodeid) + '"]');
    if (card) {
      var back = line(detail, "p", "");
      var link = line(back, "a", "diagnosis");
      link.href = "#" + card.id;
    }
    line(detail, "h4", found.length ? "Ran alongside (" + found.length + ")" :
         "Nothing ran alongside on other workers");
    var list = line(detail, "ul", "", "alongside");
    found.forEach(function (pair) {
      var item = line(list, "li", "");
      var link = line(item, "a", pair[0].dataset.nodeid);
      link.href = "#" + pair[0].id;
      link.addEventListener("click", function (event) { event.preventDefault(); pick(pair[0]); });
      item.appendChild(document.createTextNode(" on " + pair[0].dataset.lane + ", " +
                                               pair[1].toFixed(2) + " s overlap (" +
                                               pair[0].dataset.outcome + ")"));
    });
  }

  var picked = null;
  function pick(bar) {
    clear("selected");
    picked = bar;
    bar.classList.add("selected");
    show(bar, light(bar));
    if (history.replaceState) { history.replaceState(null, "", "#" + bar.id); }
  }

  bars.forEach(function (bar) {
    bar.addEventListener("click", function () { pick(bar); });
    bar.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pick(bar); }
    });
    bar.addEventListener("mouseenter", function () { light(bar); });
    bar.addEventListener("mouseleave", function () { light(picked); });
  });

  document.querySelectorAll('a[href^="#t-"]').forEach(function (link) {
    link.addEventListener("click", function (event) {
      var bar = document.getElementById(link.hash.slice(1));
      if (!bar) { return; }
      event.preventDefault();
      pick(bar);
      document.getElementById("timeline").scrollIntoView();
    });
  });

  var start = location.hash && document.getElementById(location.hash.slice(1));
  if (start && start.classList.contains("bar")) { pick(start); }
  document.documentElement.dataset.ready = "true";
})();
"""
