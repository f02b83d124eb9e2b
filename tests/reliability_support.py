"""Black-box helpers for the reliability regression tests (issue #8).

They only use what a user has: the command line, the ``poolchaos`` console script and the text
and files a run leaves behind, never the package's internal modules (its layout is moving).

Where each defect is tested (each file's docstring maps its tests to defect ids):
    test_reliability_containment.py  D2 D3 D5 D7 D8 D9 D21
    test_reliability_outputs.py      D6 D13 D14 D15 D16 D18 D19 D20
    test_reliability_processes.py    D1 D4 D10 D11 D12 D17
    test_reliability_findings.py     D22 D23, the "also seen" items, "findings must be true",
                                     and two defects beyond the list
    test_fault_injection.py          D21: each hook step of the plugin made to raise in turn
A test the current code fails is a strict xfail whose reason starts with its defect id: the
fix for that defect is done when its marks can be removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

#: pytest's own options for a session that loads the plugin, as ``chaostester`` does
#: (pytest-rerunfailures only where a test asks for it with ``-p rerunfailures``).
PLUGIN = ("-p", "poolchaos", "-p", "no:randomly", "-p", "no:cacheprovider",
          "-p", "no:rerunfailures")
NO_PLUGIN = ("-p", "no:poolchaos", "-p", "no:randomly", "-p", "no:cacheprovider",
             "-p", "no:rerunfailures")


def poolchaos_section(text: str) -> str:
    """The plugin's terminal section: from its ``= poolchaos =`` rule to pytest's next one."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "= poolchaos =" in line), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("=") and lines[i].endswith("=")), len(lines))
    return "\n".join(lines[start:end])


def annotations(text: str) -> str:
    """GitHub annotation lines the plugin printed."""
    return "\n".join(line for line in text.splitlines() if line.startswith("::"))


def assert_no_crash(text: str) -> None:
    """No traceback and no INTERNALERROR: a plugin fault is one plain message at most."""
    assert "INTERNALERROR" not in text, text[-3000:]
    assert "Traceback (most recent call last)" not in text, text[-3000:]


def cli_path() -> str:
    """The ``poolchaos`` console script installed next to this interpreter."""
    beside = Path(sys.executable).with_name("poolchaos")
    found = str(beside) if beside.exists() else shutil.which("poolchaos")
    assert found, "the poolchaos console script is not installed"
    return found


def run_cli(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.run(cli_path(), *args, timeout=60)


def outcomes_without_plugin(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, int], int]:
    result = pytester.runpytest_subprocess(*NO_PLUGIN, *args, timeout=60)
    return result.parseoutcomes(), int(result.ret)


def kill_quietly(pid: int) -> None:
    """SIGKILL a process this test itself started (by pid read from its own file)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")
