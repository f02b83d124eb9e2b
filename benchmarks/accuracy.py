"""Diagnosis accuracy on the labelled corpus: the plugin against the labels and a keyword stand-in.

Runs ``python -m pytest -p poolchaos --poolchaos-json=...`` over a half of benchmarks/corpus/
(fresh $CORPUS_STATE_DIR per run, see its README), reads the JSON report, the junit XML of the
same run and the half's labels.json, and prints: overall accuracy, per-category precision and
recall, the confusion matrix, polluter accuracy over victims, verdict accuracy (meaningful with
--rerun), leak precision and recall per kind, mean confidence when right and when wrong, the
expected calibration error (10 bins), the wall time of each run, and the same accuracy for a
plain regex classifier over the failure text and exception type.

Tune rules against --half tune only; heldout/ is for reporting (benchmarks/corpus/README.md).

    python benchmarks/accuracy.py                       # tune half, no reruns
    python benchmarks/accuracy.py --half both --rerun 3 # the "before/after" line, both halves
    python benchmarks/accuracy.py --cost                # 40 failures: plain vs --rerun 3 only
    python benchmarks/accuracy.py --fit weights.json    # per-rule weights fitted on tune
    python benchmarks/accuracy.py --json metrics.json   # everything printed, as JSON
    python benchmarks/accuracy.py --pytest-arg=--poolchaos-confirm=off  # without confirming

The default run is what a user gets: it includes the confirming run of the failures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import accuracy_metrics as am

CORPUS = Path(__file__).resolve().parent / "corpus"
STATE_ENV = "CORPUS_STATE_DIR"
COST_FAILURES = 40
EXTRA: list[str] = []  # --pytest-arg: more options for every run (e.g. the confirm budget)
SHORT = {"timeout": "tmo", "expectation": "exp", "lifecycle": "life",
         "config-pollution": "poll", "mock-gap": "mock", "race": "race",
         "unclassified": "uncl", am.NO_DIAGNOSIS: "none", am.PASSED: "pass"}


@dataclass
class Run:
    half: str
    rerun: int
    seconds: float
    report: dict[str, Any]
    failures: dict[str, am.Failure]
    exitstatus: int


def run_half(half: Path, rerun: int, nodeids: Sequence[str] = (),
             keep: Path | None = None) -> Run:
    """One pytest session with the plugin over ``half`` (or ``nodeids`` of it)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"poolchaos-accuracy-{half.name}-"))
    try:
        state = tmp / "state"
        state.mkdir()
        report, junit, log = tmp / "report.json", tmp / "junit.xml", tmp / "pytest.log"
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
        env[STATE_ENV] = str(state)
        args = [sys.executable, "-m", "pytest", "-p", "poolchaos", "-p", "no:cacheprovider",
                "-p", "no:randomly", "-q", "--no-header", f"--basetemp={tmp / 'basetemp'}",
                f"--poolchaos-json={report}", f"--junitxml={junit}", "-o",
                "junit_family=xunit2", f"--poolchaos-rerun={rerun}", *EXTRA, *nodeids]
        start = time.perf_counter()
        with log.open("w") as out:
            done = subprocess.run(args, cwd=half, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=3600, check=False)
        seconds = time.perf_counter() - start
        if not report.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise SystemExit(f"{half.name}: no JSON report (exit {done.returncode})\n{tail}")
        failures = am.junit_failures(junit.read_text()) if junit.exists() else {}
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            suffix = f"{half.name}-rerun{rerun}" + ("-selection" if nodeids else "")
            for path in (report, junit, log):
                if path.exists():
                    shutil.copy(path, keep / f"{path.stem}-{suffix}{path.suffix}")
        return Run(half.name, rerun, seconds, json.loads(report.read_text()), failures,
                   done.returncode)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def labels_of(half: Path) -> dict[str, Any]:
    return dict(json.loads((half / "labels.json").read_text()))


# -- printing -----------------------------------------------------------------------------------

def pct(value: float | None) -> str:
    return "   -" if value is None else f"{value * 100:3.0f}%"


def num(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def print_metrics(run: Run, metrics: Mapping[str, Any], show_ids: bool) -> None:
    diag = (run.report.get("session") or {}).get("diagnostics") or {}
    extra = f", diagnosis {diag['seconds']:.1f} s" if "seconds" in diag else ""
    print(f"\n== {run.half}: --poolchaos-rerun={run.rerun}, {run.seconds:.1f} s wall{extra}, "
          f"{metrics['failures']} labelled failures")
    keyword = metrics.get("keyword") or {}
    print(f"accuracy: plugin {pct(metrics['accuracy'])}   keyword stand-in "
          f"{pct(keyword.get('accuracy'))}")
    print(f"{'category':17} {'n':>3} {'prec':>5} {'recall':>6}   {'kw prec':>7} {'kw rec':>6}")
    for category in am.CATEGORIES:
        s = metrics["per_category"][category]
        k = (keyword.get("per_category") or {}).get(category, {})
        print(f"{category:17} {s['support']:>3} {pct(s['precision']):>5} {pct(s['recall']):>6}"
              f"   {pct(k.get('precision')):>7} {pct(k.get('recall')):>6}")
    print_confusion(metrics["confusion"])
    pol = metrics["polluter"]
    print(f"polluter: {pol['right']}/{pol['victims']} victims named right "
          f"({pct(pol['accuracy'])})")
    print_verdicts(metrics["verdict"], run.rerun)
    print_leaks(metrics["leaks"])
    cal = metrics["calibration"]
    print(f"confidence: mean {num(cal['mean_confidence_right'])} when right, "
          f"{num(cal['mean_confidence_wrong'])} when wrong; ECE (10 bins) {num(cal['ece'])}")
    problems = metrics["corpus_problems"]
    if problems:
        print(f"corpus problems ({len(problems)}): the run disagrees with the labels; "
              f"run benchmarks/corpus_check.py")
        for line in problems[:10] if show_ids else ():
            print(f"  {line}")


def print_confusion(matrix: Mapping[str, Mapping[str, int]]) -> None:
    columns = [*am.CATEGORIES, am.NO_DIAGNOSIS, am.PASSED]
    seen = {col for row in matrix.values() for col in row}
    columns += sorted(seen - set(columns))
    columns = [c for c in columns if c in am.CATEGORIES or c in seen]
    print("confusion (rows: label, columns: diagnosis)")
    print(" " * 17 + "".join(f"{SHORT.get(c, c[:5]):>6}" for c in columns))
    for row in am.CATEGORIES:
        counts = matrix.get(row, {})
        print(f"{row:17}" + "".join(f"{counts.get(c, 0) or '.':>6}" for c in columns))


def print_verdicts(verdict: Mapping[str, Any], rerun: int) -> None:
    note = "" if rerun else " (no reruns: every verdict is 'unknown')"
    print(f"verdict accuracy: {pct(verdict['accuracy'])}{note}")
    for label, cols in sorted(verdict["table"].items()):
        shown = ", ".join(f"{k} {v}" for k, v in sorted(cols.items()))
        print(f"  {label:16} -> {shown}")


def print_leaks(leaks: Mapping[str, Mapping[str, Any]]) -> None:
    total = leaks.get("*")
    if total:
        print(f"leaks (test x kind): precision {pct(total['precision'])}, "
              f"recall {pct(total['recall'])}")
    for kind, c in leaks.items():
        if kind != "*":
            print(f"  {kind:15} tp {c['tp']:>3} fp {c['fp']:>3} fn {c['fn']:>3}   "
                  f"precision {pct(c['precision'])} recall {pct(c['recall'])}")


# -- the cost suite -----------------------------------------------------------------------------

def collection_order(half: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                           "no:poolchaos", "-p", "no:cacheprovider"], cwd=half,
                          capture_output=True, text=True, timeout=300, check=False)
    return [line.strip() for line in done.stdout.splitlines() if "::" in line]


def cost_selection(labels: Mapping[str, Any], order: Sequence[str],
                   count: int = COST_FAILURES) -> list[str]:
    """The first ``count`` labelled failures in collection order, plus the polluters of the
    order-dependent ones among them, in collection order."""
    chosen = [nodeid for nodeid in order if (labels.get(nodeid) or {}).get("category")][:count]
    needed = set(chosen) | {labels[n]["polluter"] for n in chosen if labels[n].get("polluter")}
    return [nodeid for nodeid in order if nodeid in needed]


def cost(keep: Path | None) -> dict[str, Any]:
    half = CORPUS / "tune"
    labels = labels_of(half)
    selection = cost_selection(labels, collection_order(half))
    failures = sum(1 for n in selection if labels[n].get("category"))
    plain = run_half(half, 0, selection, keep)
    rerun = run_half(half, 3, selection, keep)
    ratio = rerun.seconds / plain.seconds if plain.seconds else None
    print(f"\n== cost: {failures} failures (+{len(selection) - failures} polluters) of tune")
    print(f"plain run            {plain.seconds:6.1f} s")
    print(f"--poolchaos-rerun=3  {rerun.seconds:6.1f} s   ratio {ratio:.1f}x" if ratio else "")
    diag = (rerun.report.get("session") or {}).get("diagnostics") or {}
    if diag:
        print(f"  diagnosis phase: {diag.get('seconds', 0):.1f} s, "
              f"{diag.get('subprocess_runs', '?')} subprocess run(s)")
    return {"failures": failures, "selection": len(selection), "plain_s": plain.seconds,
            "rerun3_s": rerun.seconds, "ratio": ratio}


# -- main ---------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("tune", "heldout", "both"),
                        help="default: tune, or none when only --cost is asked for")
    parser.add_argument("--rerun", type=int, default=0, metavar="N",
                        help="--poolchaos-rerun=N for the runs (default 0)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every metric as JSON")
    parser.add_argument("--cost", action="store_true",
                        help="time the 40-failure suite plain and with --poolchaos-rerun=3")
    parser.add_argument("--fit", type=Path, metavar="OUT",
                        help="fit per-rule weights on the tune half and write them as JSON")
    parser.add_argument("--pytest-arg", action="append", default=[], metavar="ARG",
                        help="one more pytest option for every run (repeatable), e.g. "
                             "--pytest-arg=--poolchaos-confirm=off for the run before confirm")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep each run's JSON report, junit XML and log in DIR")
    options = parser.parse_args()
    EXTRA.extend(options.pytest_arg)
    half = options.half or ("none" if options.cost and options.fit is None else "tune")
    halves: tuple[str, ...] = {"both": ("tune", "heldout"), "none": ()}.get(half, (half,))
    if options.fit is not None and "tune" not in halves:
        halves = ("tune", *halves)
    results: dict[str, Any] = {}
    runs: dict[str, Run] = {}
    for name in halves:
        half = CORPUS / name
        run = runs[name] = run_half(half, options.rerun, keep=options.keep)
        metrics = am.evaluate(labels_of(half), run.report, run.failures)
        print_metrics(run, metrics, show_ids=name == "tune")
        results[name] = {"rerun": run.rerun, "seconds": run.seconds, "metrics": metrics}
    if options.cost:
        results["cost"] = cost(options.keep)
    if options.fit is not None:
        fit = am.fit_weights([runs["tune"].report], labels_of(CORPUS / "tune"))
        write_fit(options.fit, fit)
        results["fit"] = asdict(fit)
    if options.json is not None:
        options.json.write_text(json.dumps(results, indent=2, default=list) + "\n")
    return 0


def write_fit(path: Path, fit: am.Fit) -> None:
    note = ("weights multiply each rule's score before the plugin's decision; fitted on the "
            "tune half only")
    if not fit.usable:
        note = ("no report listed scored rules ({id, category, score}); the plugin still "
                "emits rule ids only, so every weight stays 1.0")
    data = {"weights": fit.weights, "usable_failures": fit.usable,
            "accuracy_before": fit.accuracy_before, "accuracy_after": fit.accuracy_after,
            "ece_before": fit.ece_before, "ece_after": fit.ece_after, "note": note}
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"\nfit: {fit.usable} usable failures, accuracy {pct(fit.accuracy_before)} -> "
          f"{pct(fit.accuracy_after)}, ECE {num(fit.ece_before)} -> {num(fit.ece_after)}; "
          f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
