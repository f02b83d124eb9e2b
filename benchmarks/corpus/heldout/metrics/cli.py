"""`metrics report [--verbose]`."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("metrics.cli")


def main(argv: list[str]) -> int:
    if "--verbose" in argv:
        root = logging.getLogger()
        root.addHandler(logging.StreamHandler(sys.stdout))
        root.setLevel(logging.INFO)
        log.info("verbose output on")
    log.info("building report")
    print("requests 3")
    return 0
