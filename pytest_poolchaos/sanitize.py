"""Keep secrets out of every report (promise 4).

Values of environment variables whose names look secret are replaced wherever they would be
printed: in leak details, ledger entries, evidence lines and suggestions.
"""

from __future__ import annotations

import os
import re

SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|PASSPHRASE|KEY|CREDENTIAL|AUTH|COOKIE|PRIVATE|SIGNATURE|DSN",
    re.IGNORECASE,
)
MASK = "***"
_MIN_LEN = 4  # shorter values would mask ordinary words everywhere


def is_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def redact_value(name: str, value: str | None) -> str | None:
    return MASK if value is not None and is_secret(name) else value


def redact_text(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace the current values of secret-looking env vars inside free text."""
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if len(value) >= _MIN_LEN and is_secret(name) and value in text:
            text = text.replace(value, MASK)
    return text
