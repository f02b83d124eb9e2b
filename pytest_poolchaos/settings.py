"""Resolve command line and ini into one frozen Settings object.

Precedence: command line > ini file > default. Ini values are read as text and validated here,
so every bad value gets a ``pytest.UsageError`` naming the option, the accepted values and where
the value came from (pytest's own typed ini errors do not name the key).
"""

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .options import OPTIONS, Option

if TYPE_CHECKING:
    from .chaos.spec import ChaosSpec

T = TypeVar("T")

_OPTION = {option.name: option for option in OPTIONS}
_WATCH = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


class Settings:
    """Every option, resolved once; read only. A plain class: it is made at every
    start-up, and defining a NamedTuple of this many fields cost 0.2 ms of it."""

    __slots__ = ("annotations", "bisect", "bisect_budget", "bisect_seconds", "chaos",
                 "cleanup_grace", "confirm", "confirm_seconds", "disable_rules",
                 "exit_timeout", "history", "html", "hunt", "hunt_fail", "isolate",
                 "journal", "json", "leaks", "markdown", "rerun", "rerun_chaos",
                 "rerun_mode", "watch")

    def __init__(self, *,
                 leaks: str = "warn", isolate: str = "off", json: Path | None = None,
                 watch: tuple[str, ...] = (), disable_rules: tuple[str, ...] = (),
                 cleanup_grace: float = 1.0, rerun: int = 0, rerun_mode: str = "both",
                 confirm: str = "auto", confirm_seconds: float = 60.0, bisect: bool = False,
                 bisect_budget: int = 20, bisect_seconds: float = 120.0, exit_timeout: float = 0.0,
                 journal: str = "auto", markdown: Path | None = None, annotations: bool = False,
                 history: Path | None = None, html: Path | None = None,
                 chaos: "ChaosSpec | None" = None, rerun_chaos: bool = False, hunt: int = 0,
                 hunt_fail: bool = False) -> None:
        self.leaks = leaks
        self.isolate = isolate
        self.json = json
        self.watch = watch
        self.disable_rules = disable_rules
        self.cleanup_grace = cleanup_grace
        self.rerun = rerun
        self.rerun_mode = rerun_mode
        #: "auto" or "off": the confirming run of the failures after the session
        self.confirm = confirm
        self.confirm_seconds = confirm_seconds
        self.bisect = bisect
        self.bisect_budget = bisect_budget
        self.bisect_seconds = bisect_seconds
        self.exit_timeout = exit_timeout
        #: "auto", "off" or an absolute file path; resolved at session start (journal.plan)
        self.journal = journal
        self.markdown = markdown
        self.annotations = annotations
        self.history = history
        self.html = html
        self.chaos = chaos
        self.rerun_chaos = rerun_chaos
        self.hunt = hunt
        self.hunt_fail = hunt_fail

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, name):
            raise AttributeError(f"Settings are read only ({name})")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Settings({shown})"


SETTINGS = pytest.StashKey[Settings]()


def resolve(config: pytest.Config) -> Settings:
    """Read every option once; raise pytest.UsageError on the first bad value."""
    get = _Reader(config)
    hunt = get("hunt", _count, 0)
    rerun = 0 if hunt else get("rerun", _count, 0)  # a hunt reruns every test already
    bisect = get("bisect", _boolean, None)
    # a hunt reruns every test already; the confirming run would only repeat it
    confirm = "off" if hunt else get("confirm", _choice, "auto")
    return Settings(
        leaks=get("leaks", _choice, "warn"),
        isolate=get("isolate", _choice, "off"),
        json=get("json", _path(config), None),
        watch=tuple(get("watch", _watch_list(config), [])),
        disable_rules=tuple(get("disable_rules", _word_list, [])),
        cleanup_grace=get("cleanup_grace", _seconds, 1.0),
        rerun=rerun,
        rerun_mode=get("rerun_mode", _choice, "both"),
        confirm=confirm,
        confirm_seconds=get("confirm_seconds", _seconds, 60.0),
        bisect=(rerun > 0 or confirm == "auto") if bisect is None else bisect,
        bisect_budget=get("bisect_budget", _positive, 20),
        bisect_seconds=get("bisect_seconds", _seconds, 120.0),
        exit_timeout=get("exit_timeout", _seconds, 0.0),
        journal=get("journal", _journal(config), "auto"),
        markdown=get("markdown", _path(config), None),
        annotations=_annotations(get("annotations", _choice, "auto")),
        history=_history(config, get("history", _history_value(config), "auto")),
        html=get("html", _file(config), None),
        chaos=get("chaos", _chaos(config), None),
        rerun_chaos=bool(get("rerun_chaos", _boolean, False)),
        hunt=hunt,
        hunt_fail=bool(get("hunt_fail", _boolean, False)),
    )


class _Reader:
    """Looks a value up on the command line, then in the ini file, and validates it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def __call__(self, name: str, parse: Callable[[Option, Any], T], default: T) -> T:
        option = _OPTION[name]
        value = self.config.getoption(option.dest, None)
        where = f"command line {option.cli}"
        if value == "" or (isinstance(value, list) and "" in value):
            # --poolchaos-json= (an unset CI variable) must not quietly mean the default
            raise pytest.UsageError(f"{option.cli}: expected a value, got an empty one "
                                    f"(from the {where})")
        if _empty(value):
            value = self._ini(option)
            where = f"ini key {option.ini}"
        if _empty(value):
            return default
        try:
            return parse(option, value)
        except ValueError as error:
            raise pytest.UsageError(f"{option.cli} / {option.ini}: {error}, got {value!r} "
                                    f"(from the {where})") from None

    def _ini(self, option: Option) -> Any:
        try:
            return self.config.getini(option.ini)
        except ValueError as error:  # pytest's own conversion of a typed ini value
            raise pytest.UsageError(f"{option.ini}: {error}") from None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _choice(option: Option, value: Any) -> str:
    text = str(value).strip().lower()
    if text not in option.choices:
        raise ValueError("expected one of " + ", ".join(option.choices))
    return text


def _text(option: Option, value: Any) -> str:
    return str(value).strip()


def _number(value: Any, kind: Callable[[str], T], what: str) -> T:
    try:
        return kind(str(value).strip())
    except ValueError:
        raise ValueError(f"expected {what}") from None


def _count(option: Option, value: Any) -> int:
    number = _number(value, int, "a whole number >= 0")
    if number < 0:
        raise ValueError("expected a whole number >= 0")
    return number


def _positive(option: Option, value: Any) -> int:
    number = _number(value, int, "a whole number >= 1")
    if number < 1:
        raise ValueError("expected a whole number >= 1")
    return number


MAX_SECONDS = 86400.0  # a day: more is a typo, and 1e308 overflows every timer and deadline


def _seconds(option: Option, value: Any) -> float:
    what = f"a number of seconds from 0 to {MAX_SECONDS:g}"
    number = _number(value, float, what)
    if not 0 <= number <= MAX_SECONDS:
        raise ValueError(f"expected {what}")
    return number


def _boolean(option: Option, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _lines(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [part for item in items for part in str(item).replace(",", " ").split() if part]


def _word_list(option: Option, value: Any) -> list[str]:
    return _lines(value)


def _watch_list(config: pytest.Config) -> Callable[[Option, Any], list[str]]:
    folders = (config.invocation_params.dir, config.rootpath)

    def parse(option: Option, value: Any) -> list[str]:
        items = _lines(value)
        for item in items:
            if not re.match(_WATCH, item):
                raise ValueError(f"expected package.module:attribute entries, {item!r} is "
                                 f"not one")
            problem = _missing_target(item, folders)
            if problem:
                raise ValueError(f"expected importable package.module:attribute entries; "
                                 f"{item}: {problem}")
        return items

    return parse


def _import(name: str, folders: Sequence[Path]) -> Any:
    """Import ``name``, also from the folders collection would put on sys.path later."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        added = [str(folder) for folder in folders if str(folder) not in sys.path]
        sys.path[:0] = added
        try:
            return importlib.import_module(name)
        finally:
            for folder in added:
                sys.path.remove(folder)


def _missing_target(item: str, folders: Sequence[Path]) -> str | None:
    """Why ``module:attribute`` cannot be watched, or None when it can.

    The module is imported now: the user named it to be watched, and a typo found at the end
    of a long run (a probe that silently snapshots nothing) is worth nothing.
    """
    module_name, _, attr = item.partition(":")
    try:
        target: Any = _import(module_name, folders)
    except ImportError as error:
        return f"no module {module_name} ({error})"
    except Exception as error:  # the module itself fails: say so instead of a traceback
        return f"importing {module_name} raised {type(error).__name__}: {error}"
    for part in attr.split("."):
        if not hasattr(target, part):
            return f"{module_name} has no attribute {attr}"
        target = getattr(target, part)
    return None


def _path(config: pytest.Config) -> Callable[[Option, Any], Path]:
    return _file(config)


def _unwritable(path: Path) -> str | None:
    """Why a file cannot be made at ``path`` (found now, not after an hour of tests)."""
    if path.is_dir():
        return "expected the path of a file, not a directory"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the report writer creates the missing folders
    if not folder.is_dir():
        return f"expected a writable file path; {folder} is not a directory"
    if path.exists() and not os.access(path, os.W_OK):
        return f"expected a writable file path; {path} is not writable"
    if not path.exists() and not _can_create_in(folder):
        return f"expected a writable file path; the folder {folder} is not writable"
    return None


def _can_create_in(folder: Path) -> bool:
    # os.access says yes to root everywhere (/proc, a read-only mount): try, as the writer
    # will, with a file of the writer's own hidden name pattern, removed at once.
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    probe = folder / f".poolchaos-probe.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return False
    probe.unlink(missing_ok=True)
    return True


#: workerinput key: the controller's resolved chaos spec, so every xdist worker makes the same
#: seeded noise (the way pytest-randomly hands its seed to workers)
CHAOS_KEY = "poolchaos_chaos"


def _chaos(config: pytest.Config) -> "Callable[[Option, Any], ChaosSpec | None]":
    def parse(option: Option, value: Any) -> "ChaosSpec | None":
        text = str(value).strip()
        if text.lower() == "off":
            return None  # chaos/ is not even imported
        from .chaos.spec import parse as parse_spec

        sent = getattr(config, "workerinput", {}).get(CHAOS_KEY)
        return parse_spec(sent if sent else text)

    return parse


def _journal(config: pytest.Config) -> Callable[[Option, Any], str]:
    def parse(option: Option, value: Any) -> str:
        text = str(value).strip()
        if text.lower() in ("auto", "off"):
            return text.lower()
        path = Path(config.invocation_params.dir, text)
        if path.is_dir():
            # Never write into, move or replace a directory the user named by mistake.
            raise ValueError("expected auto, off or a file path; this is a directory")
        problem = _unwritable(path)
        if problem:
            raise ValueError(problem)
        return str(path)

    return parse


def _file(config: pytest.Config) -> Callable[[Option, Any], Path]:
    def parse(option: Option, value: Any) -> Path:
        path = Path(config.invocation_params.dir, str(value).strip())
        problem = _unwritable(path)
        if problem:
            raise ValueError(problem)
        return path

    return parse


def _history_value(config: pytest.Config) -> Callable[[Option, Any], str]:
    def parse(option: Option, value: Any) -> str:
        text = str(value).strip()
        if text.lower() not in ("auto", "off") and Path(config.invocation_params.dir,
                                                        text).is_dir():
            raise ValueError("expected auto, off or the path of a file, not a directory")
        return text

    return parse


def _history(config: pytest.Config, value: str) -> Path | None:
    if value.lower() == "off":
        return None
    if value.lower() == "auto":
        folder = cache_folder(config)
        return None if folder is None else folder / "history.sqlite"
    return Path(config.invocation_params.dir, value)


def cache_folder(config: pytest.Config) -> Path | None:
    """This plugin's folder in pytest's cache (not created here); None without the cache.

    ``config.cache`` does not exist yet when settings are resolved (the cache plugin's
    pytest_configure runs after this plugin's), so the folder is found the way that plugin
    finds it; whoever writes there first creates it through ``config.cache.mkdir``.
    """
    if config.pluginmanager.get_plugin("cacheprovider") is None:  # -p no:cacheprovider
        return None
    root = Path(os.path.expandvars(os.path.expanduser(str(config.getini("cache_dir")))))
    return (root if root.is_absolute() else config.rootpath / root) / "d" / "poolchaos"


def _annotations(value: str) -> bool:
    return value == "on" or (value == "auto" and os.environ.get("GITHUB_ACTIONS") == "true")
