"""Make every text the plugin emits safe to print: no secrets, encodable, bounded.

``redact_text`` is the one redaction every output goes through (terminal, JSON, Markdown,
annotations, the journal, ``poolchaos report``). It masks:

* values of environment variables whose names look secret, those set now and those a test set
  and removed again (``remember_secret`` keeps them for the rest of the process);
* passwords in URLs (``scheme://user:password@host``);
* common token shapes: AWS access key ids, GitHub tokens, ``Bearer`` tokens, JWTs, Slack
  tokens;
* values given to options or assignments named like secrets (``--api-token=...``,
  ``PASSWORD=...``, ``password: ...``).

``printable`` makes text encodable as UTF-8 (lone surrogates from ``os.fsdecode`` would break
pytest-xdist's wire and every file written), and ``clip`` bounds it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["MASK", "clip", "environ_writes", "is_secret", "printable", "redact_args",
           "redact_text", "redact_texts", "redact_value", "remember_secret", "safe_text",
           "scrub", "unwatch_environ", "visible", "watch_environ"]

MASK = "***"
_SECRET_WORDS = r"TOKEN|SECRET|PASSW|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|KEY|" \
                r"CREDENTIAL|AUTH|COOKIE|PRIVATE|SIGNATURE|DSN"
# The same words as plain text: what a name or a text must contain before any pattern is tried
# (compiling a pattern costs a green run more than every check it would save).
_WORDS = ("TOKEN", "SECRET", "PASSW", "PASSPHRASE", "KEY", "CREDENTIAL", "AUTH", "COOKIE",
          "PRIVATE", "SIGNATURE", "DSN")
_HINTS = (*_WORDS, "://", "AKIA", "ASIA", "GHP_", "GHO_", "GHU_", "GHS_", "GHR_", "GITHUB_PAT_",
          "EYJ", "XOX", "BEARER")
_MIN_LEN = 4  # shorter values would mask ordinary words everywhere
_SEEN: set[str] = set()  # secret values seen in this process, set or removed by tests


@functools.lru_cache(maxsize=4096)
def is_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in _WORDS)


def redact_value(name: str, value: str | None) -> str | None:
    """``value`` of a variable or option called ``name``, masked when the name looks secret."""
    if value is None or not is_secret(name):
        return value
    remember_secret(value)
    return MASK


def remember_secret(value: str) -> None:
    """Mask ``value`` wherever it shows up later, even after its variable is gone."""
    if len(value) >= _MIN_LEN:
        _SEEN.add(value)


def redact_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret the module knows of masked (see the module docstring)."""
    if not text:
        return text
    return _redact(text, _known_secrets(environ))


def _known_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    # os.environ now, and the environment the run started with when it is given. Reading
    # os.environ decodes every variable, and a failure's every line is redacted: it is read
    # again only after a write (while it is watched; unwatched, every time).
    writes = environ_writes()
    if writes < 0 or writes != _ENVIRON_SECRETS[0]:
        _ENVIRON_SECRETS[:] = [writes, _secret_values(os.environ)]
    found: frozenset[str] = _ENVIRON_SECRETS[1]
    if environ is not None:
        found = found | _secret_values(environ)
    # the longest first: a secret that contains another is masked whole
    return sorted(found | _SEEN, key=len, reverse=True)


def _secret_values(environ: Mapping[str, str]) -> frozenset[str]:
    return frozenset([value for name, value in environ.items()
                      if len(value) >= _MIN_LEN and is_secret(name)])


#: [environ_writes() when os.environ was last read, the secret values it held]
_ENVIRON_SECRETS: list[Any] = [-1, frozenset()]


def _redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    upper = text.upper()
    if not any(hint in upper for hint in _HINTS):
        return text
    url, tokens, bearer, named = _patterns()
    text = url.sub(rf"\g<1>{MASK}@", text)
    text = tokens.sub(MASK, text)
    text = bearer.sub(rf"\g<1>{MASK}", text)
    return named.sub(_keep_name, text)


def scrub(data: T, environ: Mapping[str, str] | None = None) -> T:
    """JSON-like ``data`` (dicts, lists, text) with every text redacted and made encodable.

    What crosses pytest-xdist's wire or is written to a file goes through here, once, where
    it is serialized: a lone surrogate kills execnet's encoder and the worker with it.
    """
    cleaned: T = _scrub(data, _known_secrets(environ))
    return cleaned


def _scrub(data: Any, secrets: list[str]) -> Any:
    if isinstance(data, str):
        return printable(_redact(data, secrets)) if data else data
    if isinstance(data, dict):
        return {_scrub(key, secrets): _scrub(value, secrets) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_scrub(item, secrets) for item in data]
    return data


def redact_args(args: Sequence[str]) -> list[str]:
    """A command line with secrets masked, the value of ``--api-token VALUE`` included."""
    out: list[str] = []
    for arg in args:
        if out and _secret_option(out[-1]) and not arg.startswith("-"):
            remember_secret(arg)
            out.append(MASK)
            continue
        name, equals, value = arg.partition("=")
        if equals and _secret_option(name) and value:
            remember_secret(value)
        out.append(arg)
    return redact_texts(out)


def redact_texts(texts: Sequence[str]) -> list[str]:
    """``redact_text`` of each, the known secrets gathered once (a read of the environment
    each, not one per text)."""
    secrets = _known_secrets()
    return [_redact(text, secrets) if text else text for text in texts]


def _secret_option(arg: str) -> bool:
    # the plain word check first: most arguments never reach the pattern
    return arg.startswith("--") and is_secret(arg) and _option().fullmatch(arg) is not None


@functools.cache
def _option() -> re.Pattern[str]:
    return re.compile(
        r"--[\w-]{0,64}?(?:token|secret|passw\w{0,16}|passphrase|api[-_]?key|access[-_]?key|"
        r"private[-_]?key|credential\w{0,16}|auth\w{0,16}|cookie|signature|dsn)[\w-]{0,64}",
        re.IGNORECASE)


def watch_environ() -> None:
    """Remember the value of every secret-named variable set from now on, so that a value a
    test set and removed again is still masked in the reports made after it.

    ``os.environ`` gets a subclass with the same layout: every write of the process, whoever
    makes it, passes through ``__setitem__`` or ``__delitem__``, and only writes pay for it.
    They are counted too (``environ_writes``): the pool scope copies the environment only
    when it was written to.
    """
    _WATCHERS[0] += 1
    _WRITES[0] += 1  # writes made while nobody watched were not counted: copy it afresh
    _SEEN.update(_secret_values(os.environ))
    # os.environb writes to the same mapping: counted too (its bytes are never secrets here)
    for environ in (os.environ, getattr(os, "environb", None)):
        # (or this class from an earlier import of this module, which pytester's in-process
        # sessions drop from sys.modules: its writes would count in that module's counter)
        if type(environ) is os._Environ or (
                environ is not None and type(environ) is not _RememberingEnviron
                and type(environ).__qualname__ == _RememberingEnviron.__qualname__):
            environ.__class__ = _RememberingEnviron


def unwatch_environ() -> None:
    """Give ``os.environ`` its own class back when the last session watching it ends (pytester
    runs sessions inside one another). A class of this module left on it would keep the
    module, and what it reaches, alive into interpreter exit: about 4 ms more on every run's
    exit, measured. What was remembered stays remembered."""
    _WATCHERS[0] = max(0, _WATCHERS[0] - 1)
    if _WATCHERS[0]:
        return
    for environ in (os.environ, _ENVIRONB):
        kind = type(environ)
        if environ is not None and kind.__qualname__ == _RememberingEnviron.__qualname__ and \
                kind.__module__ == __name__:  # (or this class from an earlier import)
            environ.__class__ = os._Environ


def environ_writes() -> int:
    """How often ``os.environ`` (or ``os.environb``) was written to since they were watched,
    pytest's own ``PYTEST_CURRENT_TEST`` aside; -1 when they are not watched (then any call
    may differ)."""
    if type(os.environ) is not _RememberingEnviron or (
            _ENVIRONB is not None and type(_ENVIRONB) is not _RememberingEnviron):
        return -1
    return _WRITES[0]


#: the writes counted by ``_RememberingEnviron``
_WRITES = [0]
#: sessions of this process watching the environment now
_WATCHERS = [0]
_ENVIRONB = getattr(os, "environb", None)
#: set and removed by pytest around every phase of every test: not a write of the test's
_RUNNER_KEY = "PYTEST_CURRENT_TEST"
_putenv, _unsetenv = os.putenv, os.unsetenv


class _RememberingEnviron(os._Environ):  # type: ignore[type-arg]
    # The bodies of os._Environ's own two methods (the same in every supported Python), so a
    # write costs one call as it did before the class was swapped, plus the count.
    def __setitem__(self, key: str, value: str) -> None:
        encoded = self.encodekey(key)
        raw = self.encodevalue(value)
        _putenv(encoded, raw)
        self._data[encoded] = raw  # type: ignore[attr-defined]
        if type(key) is str and key == _RUNNER_KEY:  # os.environb's keys are bytes
            return
        _WRITES[0] += 1
        try:
            if isinstance(key, str) and isinstance(value, str) and is_secret(key):
                remember_secret(value)
        except Exception:  # remembering must never change what the write does
            pass

    def __delitem__(self, key: str) -> None:
        encoded = self.encodekey(key)
        _unsetenv(encoded)
        try:
            del self._data[encoded]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(key) from None
        finally:
            if type(key) is not str or key != _RUNNER_KEY:
                _WRITES[0] += 1


def _keep_name(match: re.Match[str]) -> str:
    name = next(group for group in match.groups() if group is not None)
    return f"{name}{MASK}"


def printable(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


#: C0 controls but tab and newline, and DEL: what a test's output may carry that moves the
#: cursor, clears the screen or hides what follows in a terminal or a CI log
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x09), *range(0x0b, 0x20), 0x7f)}


def visible(text: str) -> str:
    """``text`` with its control characters (tab and newline aside) written as escapes."""
    return text.translate(_CONTROLS)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


_MARGIN = 1000  # kept past a limit until redacted: a secret cut in two is not recognized


def safe_text(text: str, limit: int | None = None) -> str:
    """Redacted, encodable and, with ``limit``, clipped: what may leave the process."""
    if limit is None:
        return printable(redact_text(text))
    # Cut before redacting (a 5 MB value costs no regex time), with a margin so that a
    # secret across the limit is still whole when it is masked.
    shown = printable(redact_text(text[: limit + _MARGIN]))
    if len(text) > limit + _MARGIN:
        shown += "…"  # cut, even when masking made the rest short
    return clip(shown, limit)


@functools.cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    # Compiled on first use: a green run that prints nothing secret never pays for them.
    # Every repeat is bounded: an unbounded run tried from each position of a long value (a
    # 300 kB config blob in an env var) made the search quadratic and held a run for minutes.
    url = re.compile(r"\b([a-z][a-z0-9+.-]{0,31}://[^:/@\s]{1,256}:)[^@/\s]{1,256}@",
                     re.IGNORECASE)
    tokens = re.compile(
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
        r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{30,}"  # GitHub
        r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    )
    bearer = re.compile(r"(\b(?:Bearer|Token)\s+)[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE)
    value = r"(?!\*\*\*)['\"]?[^\s'\",;&]{" + str(_MIN_LEN) + r",4096}['\"]?"
    named = re.compile(
        # --api-token=VALUE, --password VALUE
        # Bounded repeats and a start that cannot be inside a word: unbounded ones were
        # tried from every position of a long run of dashes or capitals (quadratic).
        r"((?<![\w-])--[\w-]{0,64}?(?:token|secret|passw\w{0,16}|passphrase|api[-_]?key|"
        r"access[-_]?key|private[-_]?key|credential\w{0,16}|auth\w{0,16}|cookie|signature|"
        r"dsn)[\w-]{0,64}(?:=|\s{1,8}))" + value
        # API_TOKEN=VALUE (environment style, upper case)
        + r"|(?-i:\b([A-Z0-9_]{0,64}?(?:" + _SECRET_WORDS + r")[A-Z0-9_]{0,64}=))" + value
        # password: VALUE, "api_key": "VALUE" (configuration style)
        + r"|(\b(?:password|passwd|passphrase|secret|api_?key|access_token|auth_token|"
        r"client_secret)['\"]?\s{0,8}[:=]\s{0,8})" + value,
        re.IGNORECASE)
    return url, tokens, bearer, named
