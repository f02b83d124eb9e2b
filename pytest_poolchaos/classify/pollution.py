"""Config pollution: global state changed by an earlier test and never restored.

Every check reads ``Evidence.pollution``: the scope's ledger entries from earlier tests that are
still in effect when this test failed. Entry values arrive already redacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..model import Evidence, Finding, LedgerEntry, Suggestion, Verdict
from .signals import (
    broken_pool,
    closed_descriptor,
    describe,
    fired_early,
    hit,
    line,
    num,
    polluted_path,
    refused_shared,
    secs,
)

_ENV_KEY_ERROR = re.compile(r"^'([A-Z][A-Z0-9_]{2,})'$")
_MISSING_PATH = re.compile(r"No such file or directory: '([^'/][^']*)'")
_MIN_TOKEN = 3  # shorter keys and values ("1", "on") would match any message
_COMMON = frozenset({"True", "False", "None", "true", "false", "null"})  # in any message too


def ledger_match(e: Evidence) -> Finding | None:
    """An earlier test's unrestored change names what this failure is about."""
    found = list(_mentioned(e))
    if not found:
        return None
    entry, token = found[0]
    return hit(
        0.9,
        [f"{entry.nodeid} left {entry.describe()}, and this failure mentions {token!r}",
         *(f"also outstanding: {other.describe()} (from {other.nodeid})"
           for other, _ in found[1:3])],
        _fix(entry),
        _isolate(),
    )


def watched(e: Evidence) -> Finding | None:
    """An object listed in poolchaos_watch was changed by an earlier test, and the failure
    passed through the module that owns it."""
    owners = {exc_module for exc in e.exceptions for exc_module in exc.modules}
    entries = [entry for entry in e.pollution
               if entry.kind == "watched" and entry.key.split(":", 1)[0] in owners]
    if not entries:
        return None  # a watched change elsewhere says nothing about this failure
    return hit(0.6, [f"{entry.nodeid} left {entry.describe()}, and the failure went "
                     f"through {entry.key.split(':', 1)[0]}" for entry in entries[:3]],
               _fix(entries[0]))


def env_key_error(e: Evidence) -> Finding | None:
    """KeyError on an environment-variable name while earlier env changes are outstanding."""
    exc = e.any_exception("builtins.KeyError")
    env = _of_kind(e, "env")
    match = _ENV_KEY_ERROR.match(exc.message) if exc else None
    if match is None or not env:
        return None
    return hit(0.75, [f"KeyError {match.group(1)!r} while {len(env)} environment change(s) "
                      f"from earlier tests are in effect: {env[0].describe()} by "
                      f"{env[0].nodeid}"],
               _fix(env[0]))


def cwd_relative(e: Evidence) -> Finding | None:
    """A relative path was not found after an earlier test changed the working directory."""
    exc = e.any_exception("builtins.FileNotFoundError")
    cwd = _of_kind(e, "cwd")
    match = _MISSING_PATH.search(exc.message) if exc else None
    if match is None or not cwd:
        return None
    return hit(0.8, [f"the relative path {match.group(1)!r} was not found because "
                     f"{cwd[0].nodeid} left {cwd[0].describe()}"],
               _fix(cwd[0]))


def syspath_import(e: Evidence) -> Finding | None:
    """An import failed, or a module was loaded from a directory, while an earlier test's
    sys.path change (adding that directory) is in effect."""
    paths = _of_kind(e, "sys.path")
    shadow = _shadowing(e, paths)
    if shadow is not None:
        entry, name, path = shadow
        return hit(0.85, [f"the module {name!r} used where it failed was loaded from {path}, "
                          f"a directory {entry.nodeid} added to sys.path and never removed"],
                   _fix(entry))
    exc = e.any_exception("builtins.ImportError")
    if exc is None or not paths:
        return None
    return hit(0.7, [f"{describe(exc)} while {paths[0].nodeid} left {paths[0].describe()}"],
               _fix(paths[0]))


def leaked_patch(e: Evidence) -> Finding | None:
    """A mock patch started by an earlier test is still active and a double showed up here."""
    patches = _of_kind(e, "mock-patch")
    if not patches or not e.mocks or e.mocked:
        return None
    return hit(0.9, [f"{patches[0].nodeid} started a patch of {patches[0].key!r} and never "
                     f"stopped it; this test did not use doubles but got {e.mocks[0]}"],
               _fix(patches[0]))


def socket_timeout(e: Evidence) -> Finding | None:
    """A socket timed out under a default timeout an earlier test set."""
    entries = _of_kind(e, "socket-timeout")
    if not entries or e.any_exception("builtins.TimeoutError") is None:
        return None
    own = [f.detail.rsplit("timeout=", 1)[-1] for f in e.facts("socket")]
    if own and entries[0].after not in own:
        return None  # the socket had a timeout of its own: the default did not govern it
    return hit(0.9, [f"{entries[0].nodeid} left {entries[0].describe()}; this socket "
                     f"timed out under that default"], _fix(entries[0]))


def read_on_the_way(e: Evidence) -> Finding | None:
    """Code on the failing path reads a setting (an environment variable, a watched global's
    key) that an earlier test changed and never restored."""
    for entry in e.pollution:
        for wanted in _read_tokens(entry):
            for fact in e.facts("reads"):
                where_read, _, tokens = fact.detail.partition(": ")
                if wanted <= set(tokens.split()):
                    return hit(0.8, [f"{where_read} on the failing path reads "
                                     f"{' / '.join(sorted(wanted))}, and {entry.nodeid} left "
                                     f"{entry.describe()}"], _fix(entry))
    return None


#: environment variables the C library and the standard library read on their own, and the
#: calls that read them
_IMPLICIT_ENV = {
    "TZ": ("localtime", "mktime", "strftime", "ctime", "asctime", "fromtimestamp",
           "astimezone", "tzset"),
    "LANG": ("getlocale", "getpreferredencoding", "strcoll", "strxfrm"),
    "LC_ALL": ("getlocale", "getpreferredencoding", "strcoll", "strxfrm"),
}


def _read_tokens(entry: LedgerEntry) -> list[set[str]]:
    """What code that reads the entry's setting names (any one set of names will do): the
    variable, or a call that reads it implicitly, for an environment change; the module and
    name of a patch; the global and its key for a watched one."""
    if entry.kind == "env":
        named = [{entry.key}] if len(entry.key) >= _MIN_TOKEN else []
        return named + [{call} for call in _IMPLICIT_ENV.get(entry.key, ())]
    if entry.kind == "mock-patch":  # package.module.name: the code calls module.name
        parts = entry.key.split(".")
        return [set(parts[-2:])] if len(parts) >= 2 else []
    if ":" in entry.key:  # module:NAME['key'] of a watched (or project) global
        target = entry.key.split(":", 1)[-1]
        name = target.split("[", 1)[0].rsplit(".", 1)[-1]
        keys = re.findall(r"\[['\"]?([^\]'\"]+)", target)
        return [{name, *keys[-1:]}] if name else []
    return []


def timeout_alarm(e: Evidence) -> Finding | None:
    """pytest-timeout's signal method owns SIGALRM during each test, and this test's own use of
    SIGALRM met it: its limit was reported long before it could run out, or the failing line
    reads SIGALRM while pytest-timeout's handler held it."""
    early = fired_early(e)
    used_here = _ALARM.search(line(e))
    if early is None and not (used_here and e.facts("alarm-owner")):
        return None
    limit = e.timeout.seconds if e.timeout is not None else None
    what = (f"pytest-timeout reported its {secs(limit)} limit after {secs(early)}: its timer "
            f"cannot fire that early, so a SIGALRM from elsewhere reached the handler it "
            f"installs for the test" if early is not None else
            f"the failing line reads SIGALRM, which pytest-timeout's signal method had taken "
            f"over for the test ({e.facts('alarm-owner')[0].detail})")
    marker = f"@pytest.mark.timeout({num(limit)}, method=\"thread\")" \
        if limit else "@pytest.mark.timeout(method=\"thread\")"
    return hit(0.9 if early is not None else 0.75,
               [what, f"the line: `{line(e).strip()}`" if used_here else ""],
               Suggestion(f"The test and pytest-timeout both use SIGALRM (a handler installed "
                          f"at import, signal.alarm, setitimer): give this test the thread "
                          f"method, {marker}, or run with --timeout-method=thread.", marker))


#: a source line that sends, arms or reads SIGALRM
_ALARM = re.compile(r"\bSIGALRM\b|\balarm\(|\bsetitimer\(|\bITIMER_REAL\b")


def captured_logs(e: Evidence) -> Finding | None:
    """A caplog assertion failed while logging configuration an earlier test changed is still
    in effect (a level, a handler, propagation, a disabled logger)."""
    logging = _of_kind(e, "logging")
    if not logging or not e.facts("caplog") or e.any_exception("builtins.AssertionError") is None:
        return None
    return hit(0.75, [f"this test asserts on captured logs ({e.facts('caplog')[0].detail}) and "
                      f"{logging[0].nodeid} left {logging[0].describe()}"],
               _fix(logging[0]))


def order_dependent(e: Evidence) -> Finding | None:
    """Reruns proved the test passes alone and fails after others (verdict order-dependent)."""
    if e.reruns is None or e.reruns.verdict is not Verdict.ORDER_DEPENDENT:
        return None
    if e.reruns.collected:
        return _collected(e)
    polluter = e.reruns.polluter
    # With no global change of the polluter in the ledger, what it left may be a resource (a
    # pool still registered, a port still bound): a lifecycle reading of the failure then
    # explains the order dependence better, and wins.
    changed = any(_configured(entry) for entry in e.pollution
                  if polluter is None or entry.nodeid == polluter)
    refused = refused_shared(e)
    on_path = polluted_path(e)
    return hit(
        # proved by reruns, with the way it broke read from the failure: above any reading
        # of the refusal alone (which would blame this test's own use of the pool), or of
        # what the code whose setting the polluter changed did with it
        0.95 if refused or on_path else 0.85 if changed else 0.6,
        ["the test passes when run alone and fails after earlier tests (order-dependent)",
         f"the polluter is {polluter}" if polluter else "",
         _shared_line(e, refused) if refused else "",
         _path_line(e, polluter, on_path) if on_path else ""],
        Suggestion(f"Find what {polluter or 'the earlier test'} changes and does not restore "
                   f"(environment, cwd, module globals, patches); use monkeypatch so it is "
                   f"undone, or run with --poolchaos-isolate=restore."),
    )


def _collected(e: Evidence) -> Finding:
    # No earlier test made it fail; collecting the run's other test modules did, before any
    # of their tests ran: what an import did, not what a test left.
    return hit(
        0.7,
        ["the test passes alone and after every earlier test, and fails with the run's test "
         "modules collected: one of them changes at import what it uses"],
        Suggestion("Find the test module whose import replaces what this test uses (a "
                   "function or class registered under the same name, a default or a patch "
                   "made at module level): give each its own name, or make the change in a "
                   "fixture that undoes it."),
    )


def _path_line(e: Evidence, polluter: str | None, entry: LedgerEntry) -> str:
    if entry.kind == "env":
        reader = next((fact.detail.partition(": ")[0] for fact in e.facts("module-reads")
                       if entry.key in fact.detail.partition(": ")[2].split()), "its code")
        return (f"{polluter} left {entry.describe()}, a variable the code of {reader} reads, "
                f"and the failure went through {reader}")
    return (f"{polluter} left {entry.describe()}, and the failure went through "
            f"{entry.key.rsplit('.', 1)[0].split(':', 1)[0]}")


def _shared_line(e: Evidence, refused: str) -> str:
    exc = e.outermost
    state = ("the socket or file it used had been closed by then" if exc is not None
             and closed_descriptor(exc) else "the pool it used had lost a worker by then"
             if exc is not None and broken_pool(exc) else "the peer it connected to refused "
             "or dropped the connection" if exc is not None
             and exc.is_a("builtins.ConnectionError") else f"{refused} refused the call in a "
             f"state an earlier test left it in")
    return (f"{state}: this test started no thread, process or pool, so the object it used "
            f"was shared")


def passes_alone(e: Evidence) -> Finding | None:
    """It passed every run without the tests before it, failed after them, and they left
    changes in effect: the search for which one ran out of budget, but the runs alone already
    put the cause before this test. Weaker than a found polluter, and never for a test whose
    reruns flipped (flaky) or that failed alone (deterministic)."""
    reruns = e.reruns
    if reruns is None or reruns.verdict is not Verdict.UNKNOWN or not reruns.passes_alone:
        return None
    configured = [entry for entry in e.pollution if _configured(entry)]
    if not configured:
        return None
    first = configured[0]
    return hit(
        0.45,
        # The first line names no test: nothing here says which change it was, and the
        # polluter search takes a test named there as its first suspect.
        [f"passed {reruns.alone_passes}/{reruns.alone_runs} run(s) without the tests before "
         f"it, with {len(configured)} of their change(s) in effect when it failed here",
         f"one of them: {first.describe()} by {first.nodeid}"],
        _fix(first),
    )


def _configured(entry: LedgerEntry) -> bool:
    """A change of configuration, not a registry that grew (``_STARTED`` gaining a pool is
    the trace of a resource left running, which a lifecycle finding tells better)."""
    grew = entry.kind == "module-state" and all(
        (value or "").endswith(" item(s)") for value in (entry.before, entry.after))
    return not grew


def outstanding(e: Evidence) -> Finding | None:
    """Earlier tests left global changes in effect (weak on its own; supports the others)."""
    if not e.pollution:
        return None
    first = e.pollution[0]
    return hit(0.3, [f"{len(e.pollution)} global change(s) from earlier tests still in "
                     f"effect, e.g. {first.describe()} by {first.nodeid}"], _fix(first))


def failure_words(e: Evidence) -> str:
    """What a failure says: its messages, the failing source line and compared operands."""
    return "\n".join([e.text(), line(e), *_operands(e)])


def _mentioned(e: Evidence) -> Iterator[tuple[LedgerEntry, str]]:
    haystack = failure_words(e)
    for entry in e.pollution:
        token = mentioned_in(entry, haystack)
        if token is not None:
            yield entry, token


def mentioned_in(entry: LedgerEntry, text: str) -> str | None:
    """The first of the entry's key parts or value that ``text`` names as a whole word."""
    return next((t for t in _tokens(entry) if _contains(text, t)), None)


def _operands(e: Evidence) -> list[str]:
    return [e.comparison.left, e.comparison.right] if e.comparison else []


def _tokens(entry: LedgerEntry) -> list[str]:
    key = entry.key
    tokens = [key, *re.findall(r"\[['\"]?([^\]'\"]+)", key), key.rsplit(".", 1)[-1],
              key.rsplit(":", 1)[-1].split("[")[0]]
    # A number alone (0.5, 100) turns up in messages for reasons of its own: a timeout of
    # 0.5 s in the failure is no trace of a default some test set to 0.5.
    if entry.after is not None and entry.after != "***" and not _is_number(entry.after):
        tokens.append(entry.after)
    return [t for t in dict.fromkeys(tokens) if len(t) >= _MIN_TOKEN and t not in _COMMON]


def _contains(haystack: str, token: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(token)}(?![\w])", haystack) is not None


def _shadowing(e: Evidence, paths: list[LedgerEntry]
               ) -> tuple[LedgerEntry, str, str] | None:
    for fact in e.facts("module"):
        name, _, path = fact.detail.partition(" ")
        for entry in paths:
            added = re.findall(r"\+([^,)]+)", entry.after or "")
            if any(path.startswith(directory.rstrip("/") + "/") for directory in added):
                return entry, name, path
    return None


def _of_kind(e: Evidence, kind: str) -> list[LedgerEntry]:
    return [entry for entry in e.pollution if entry.kind == kind]


def _fix(entry: LedgerEntry) -> Suggestion:
    """Undo the polluter's change: the monkeypatch call for this very key when one can be
    written out, else the way to restore it, never a placeholder call."""
    call = restoring_call(entry)
    change = entry.describe()
    if call:
        return Suggestion(f"In {entry.nodeid}, which left {change}, make the change with "
                          f"{call.split('(', 1)[0]} (below) so it is undone after that test "
                          f"instead of leaking into later ones.", call)
    how = _HOW.get(entry.kind, "restore it in teardown (a fixture with yield)")
    return Suggestion(f"In {entry.nodeid}, which left {change}: {how}, so the change is "
                      f"undone after that test instead of leaking into later ones.")


_HOW = {
    "sys.path": "add the entry with monkeypatch.syspath_prepend(path)",
    "mock-patch": "start the patch with `with patch(...)` or call its stop() in teardown",
    "logging": "set levels with caplog.set_level(...) and remove added handlers in teardown",
    "warnings": "change filters inside warnings.catch_warnings() or with pytest.warns",
    "signal": "put the previous handler back (signal.signal(sig, old)) in teardown",
    "socket-timeout": "set it back with socket.setdefaulttimeout(None) in a finally block",
}
_WATCHED_ITEM = re.compile(r"^([\w.]+):([\w.]+)\[('[^']*'|\"[^\"]*\"|-?\d+)\]$")
_WATCHED_ATTR = re.compile(r"^([\w.]+):([\w.]+)$")
_LOGGER_LEVEL = re.compile(r"^logging\.(?:root|getLogger\(([^)]*)\))\.level$")


def restoring_call(entry: LedgerEntry) -> str:
    """The monkeypatch call that would have made ``entry``'s change undoable, or ''."""
    after = entry.after
    if entry.kind == "env":
        if after is None:
            return f"monkeypatch.delenv({entry.key!r})"
        value = "..." if "***" in after or len(after) > 60 else repr(after)
        return f"monkeypatch.setenv({entry.key!r}, {value})"
    if entry.kind == "cwd" and after and "***" not in after:
        return f"monkeypatch.chdir({after!r})"
    if entry.kind == "watched" and after is not None:
        return _watched_call(entry.key, after)
    if entry.kind == "logging" and after and (level := _LOGGER_LEVEL.match(entry.key)):
        logger = f", logger={level.group(1)}" if level.group(1) else ""
        return f"caplog.set_level({after!r}{logger})"
    return ""


def _watched_call(key: str, after: str) -> str:
    value = _value(after)
    if (item := _WATCHED_ITEM.match(key)) is not None:
        module, attr, index = item.groups()
        return f"monkeypatch.setitem({module}.{attr}, {index}, {value})"
    if (plain := _WATCHED_ATTR.match(key)) is not None:
        module, attr = plain.groups()
        owner, _, name = f"{module}.{attr}".rpartition(".")
        return f"monkeypatch.setattr({owner}, {name!r}, {value})"
    return ""


def _value(after: str) -> str:
    # Redacted values are not written out: the call names the key, the value stays the test's.
    return "..." if "***" in after or len(after) > 60 else (
        after if after[:1] in "'\"[{(" or after in _COMMON or _is_number(after) else repr(after))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _isolate() -> Suggestion:
    return Suggestion("Until it is fixed, --poolchaos-isolate=restore puts environment, cwd, "
                      "sys.path and watched globals back after every test.")

