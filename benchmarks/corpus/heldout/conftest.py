"""Suite-wide setup of the heldout half, plus the corpus' stand-in for nondeterminism.

``contended`` is True on the 1st, 3rd, 5th ... attempt of a test within one harness run and
False on the others. A test marked ``flaky`` in labels.json takes its unlucky path (the slow
load, the bad interleaving its published root cause describes) only when it is True, so it
fails in the default run and then alternates across reruns, in this process or a fresh one.
Attempts are counted in files under $CORPUS_STATE_DIR, which the harness creates empty for
every run; without it a directory is made once per session and handed to child processes
through the environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import locale
import os
import tempfile
import time
from pathlib import Path

import pytest

STATE_ENV = "CORPUS_STATE_DIR"
os.environ.setdefault(STATE_ENV, tempfile.mkdtemp(prefix="corpus-state-"))

# The project pins its suite to UTC and a UTF-8 locale; tests that change these for
# themselves are expected to put them back.
os.environ["TZ"] = "UTC"
time.tzset()
with contextlib.suppress(locale.Error):
    locale.setlocale(locale.LC_CTYPE, "C.UTF-8")


@pytest.fixture
def contended(request: pytest.FixtureRequest) -> bool:
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    counter = Path(os.environ[STATE_ENV]) / f"{digest}.attempts"
    attempts = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(attempts + 1))
    return attempts % 2 == 0
