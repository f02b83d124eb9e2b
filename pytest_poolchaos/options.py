"""Every option, declared once: a command-line flag and an ini key of the same name.

Declaring is kept apart from resolving (``settings.py``) because this table must be usable
before a ``Config`` exists, while resolving needs one and raises ``pytest.UsageError``.
"""

import pytest

GROUP = "poolchaos"


class Option:
    """One option (a plain class: the table is made at every start-up)."""

    __slots__ = ("choices", "flag", "help", "ini_type", "metavar", "name", "repeatable")

    def __init__(self, name: str, help: str, choices: tuple[str, ...] = (), metavar: str = "",
                 ini_type: str = "string", flag: bool = False, repeatable: bool = False) -> None:
        self.name = name  # attribute of Settings; the ini key is poolchaos_<name>
        self.help = help
        self.choices = choices
        self.metavar = metavar
        self.ini_type = ini_type
        self.flag = flag  # a boolean switch: --poolchaos-X / --poolchaos-no-X
        self.repeatable = repeatable  # may be given several times on the command line

    @property
    def ini(self) -> str:
        return f"poolchaos_{self.name}"

    @property
    def cli(self) -> str:
        return "--poolchaos-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return f"poolchaos_{self.name}"


OPTIONS: tuple[Option, ...] = (
    Option(
        "leaks",
        "What to do with state a test leaves behind: warn (report it), cleanup (also shut "
        "leaked pools down, join leaked threads, terminate leaked child processes), fail (also "
        "turn the leak into an error at the leaking test's teardown). Default: warn.",
        choices=("warn", "cleanup", "fail"),
    ),
    Option(
        "isolate",
        "off: only record global changes; restore: put os.environ, cwd, sys.path, logging, "
        "warnings, signal handlers, socket timeout and watched objects back after each test. "
        "Default: off.",
        choices=("off", "restore"),
    ),
    Option(
        "json",
        "Write the JSON report (schema poolchaos-report/1) to PATH, atomically.",
        metavar="PATH",
    ),
    Option(
        "watch",
        "Extra global objects to snapshot per test, as package.module:attribute (dict items, "
        "list items or the value). Repeatable; the ini key takes one per line.",
        metavar="MODULE:ATTR",
        ini_type="linelist",
        repeatable=True,
    ),
    Option(
        "disable_rules",
        "Classification rule ids to switch off (e.g. expectation.threshold). Repeatable; the "
        "ini key takes one per line.",
        metavar="RULE",
        ini_type="linelist",
        repeatable=True,
    ),
    Option(
        "cleanup_grace",
        "Seconds to wait for leaked threads to finish and for SIGTERM before SIGKILL when "
        "--poolchaos-leaks=cleanup. Default: 1.0.",
        metavar="SECONDS",
    ),
    Option(
        "rerun",
        "Rerun each failed test up to N times after the session, to tell flaky from "
        "deterministic from order-dependent. Diagnostic only: outcomes and exit status stay. "
        "Default: 0.",
        metavar="N",
    ),
    Option(
        "confirm",
        "After the session, run the failed tests once more, together, in one fresh pytest "
        "subprocess: a failure that passes there depends on what ran before it (its polluter "
        "is searched), one that fails again reproduces alone. auto: within "
        "--poolchaos-confirm-seconds, skipped when every test failed or the run was "
        "interrupted; off: never. Diagnostic only: outcomes and exit status stay. "
        "Default: auto.",
        choices=("auto", "off"),
    ),
    Option(
        "confirm_seconds",
        "Most seconds the confirming run (and the polluter search it leads to) may take. "
        "Default: 60.",
        metavar="SECONDS",
    ),
    Option(
        "rerun_mode",
        "inline: rerun in this process after the session; isolated: rerun each test alone in "
        "a fresh pytest subprocess; both. Default: both.",
        choices=("inline", "isolated", "both"),
    ),
    Option(
        "bisect",
        "Search for the earlier test whose leftover state makes an order-dependent test fail. "
        "Default: on when --poolchaos-rerun is above 0.",
        flag=True,
    ),
    Option(
        "bisect_budget",
        "Most pytest subprocess runs one polluter search may use. Default: 20.",
        metavar="RUNS",
    ),
    Option(
        "bisect_seconds",
        "Most seconds one polluter search may take. Default: 120.",
        metavar="SECONDS",
    ),
    Option(
        "exit_timeout",
        "If non-daemon threads left by tests (or multiprocessing children that exit would "
        "wait on: non-daemons, and daemons that ignore SIGTERM) would hang interpreter exit, "
        "end the process with pytest's exit status this many seconds after the report is "
        "written. Default: 0 (off).",
        metavar="SECONDS",
    ),
    Option(
        "journal",
        "Append-only journal of test starts and results, so a run killed by "
        "pytest-timeout's thread method can still be reported (poolchaos report --journal). "
        "auto: under the pytest cache directory; off: no journal. Default: auto.",
        metavar="PATH",
    ),
    Option(
        "markdown",
        "Write a Markdown summary (for CI job summaries) to PATH; appended when PATH is "
        "$GITHUB_STEP_SUMMARY, which earlier steps of the job write too.",
        metavar="PATH",
    ),
    Option(
        "annotations",
        "Print GitHub Actions annotations (::error file=...) for each diagnosed failure: "
        "auto (when GITHUB_ACTIONS is set), on, off. Default: auto.",
        choices=("auto", "on", "off"),
    ),
    Option(
        "history",
        "SQLite file where each run's outcomes, categories, verdicts and durations are kept, "
        "so failures can be told apart from flaky tests across runs (poolchaos history). "
        "auto: under the pytest cache directory; off: record nothing. Default: auto.",
        metavar="PATH",
    ),
    Option(
        "html",
        "Write a self-contained HTML report (no network needed to open it) to PATH.",
        metavar="PATH",
    ),
    Option(
        "chaos",
        "Run the tests under seeded load and scheduler noise to expose load-sensitive flaky "
        "tests: off, light, heavy, or knobs such as cpu=2,switch=1e-5,jitter=5ms,"
        "slow-start=200ms,seed=42 (a preset may come first: light,seed=42). The seed is "
        "printed; the same seed replays the same noise. Default: off.",
        metavar="off|light|heavy|SPEC",
    ),
    Option(
        "rerun_chaos",
        "With --poolchaos-rerun: also rerun each failure alone under noise (the "
        "--poolchaos-chaos spec, or heavy), to tell load-sensitive tests apart and name the "
        "knob that breaks them.",
        flag=True,
    ),
    Option(
        "hunt",
        "Instead of one run, run each selected test N times in fresh subprocesses, "
        "alternating quiet and noisy configurations, and report its failure rate quiet vs "
        "noisy. Does not change the exit status unless --poolchaos-hunt-fail. Default: 0.",
        metavar="N",
    ),
    Option(
        "hunt_fail",
        "Make a hunt that saw any failure exit with status 1.",
        flag=True,
    ),
)

MARKER = (
    "poolchaos(leaks=None, ignore_leaks=()): per-test poolchaos settings; ignore_leaks takes "
    "leak kinds (thread, process, pool, env, ...) this test may leave behind on purpose."
)


def register(parser: pytest.Parser) -> None:
    """Turn the table into command-line options and ini keys."""
    group = parser.getgroup(GROUP, "pytest-poolchaos: diagnose failing concurrent tests")
    for option in OPTIONS:
        _add_cli(group, option)
        parser.addini(option.ini, option.help, type=option.ini_type)  # type: ignore[arg-type]


def _add_cli(group: pytest.OptionGroup, option: Option) -> None:
    if option.flag:
        group.addoption(option.cli, action="store_const", const=True, dest=option.dest,
                        help=option.help)
        negative = "--poolchaos-no-" + option.name.replace("_", "-")
        group.addoption(negative, action="store_const", const=False, dest=option.dest,
                        help=f"Turn {option.cli} off.")
        return
    kwargs: dict[str, object] = {"dest": option.dest, "default": None, "help": option.help}
    if option.repeatable:
        kwargs["action"] = "append"
    if option.choices:
        kwargs["metavar"] = "{" + ",".join(option.choices) + "}"
    elif option.metavar:
        kwargs["metavar"] = option.metavar
    group.addoption(option.cli, **kwargs)
