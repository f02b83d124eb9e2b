"""Options: one table, a CLI flag and an ini key each, CLI over ini, clear UsageErrors."""

from __future__ import annotations

import pytest

from pytest_poolchaos.options import OPTIONS
from pytest_poolchaos.settings import SETTINGS, Settings

INI_STYLES = {
    "pytest.ini": "[pytest]\n{key} = {value}\n",
    "tox.ini": "[pytest]\n{key} = {value}\n",
    "setup.cfg": "[tool:pytest]\n{key} = {value}\n",
    "pyproject.toml": '[tool.pytest.ini_options]\n{key} = "{value}"\n',
}


def resolved(pytester: pytest.Pytester, *args: str) -> Settings:
    config = pytester.parseconfigure("-p", "poolchaos", *args)
    return config.stash[SETTINGS]


def test_every_option_has_a_cli_flag_and_an_ini_key_in_help(pytester):
    result = pytester.runpytest("-p", "poolchaos", "--help")
    text = result.stdout.str()
    for option in OPTIONS:
        assert option.cli in text
        assert option.ini in text


def test_defaults(pytester):
    settings = resolved(pytester)
    assert settings.leaks == "warn"
    assert settings.isolate == "off"
    assert settings.rerun == 0
    assert settings.confirm == "auto"
    assert settings.confirm_seconds == 60.0
    assert settings.bisect is True  # the confirming run leads to a polluter search
    assert settings.json is None


def test_confirm_off_turns_the_default_search_off_too(pytester):
    pytester.makeini("[pytest]\npoolchaos_confirm = off\npoolchaos_confirm_seconds = 5\n")
    settings = resolved(pytester)
    assert (settings.confirm, settings.confirm_seconds, settings.bisect) == ("off", 5.0, False)
    assert resolved(pytester, "--poolchaos-confirm=auto").confirm == "auto"


@pytest.mark.parametrize("filename", sorted(INI_STYLES))
def test_ini_files_of_every_kind_are_read(pytester, filename):
    pytester.path.joinpath(filename).write_text(
        INI_STYLES[filename].format(key="poolchaos_leaks", value="cleanup")
    )
    assert resolved(pytester).leaks == "cleanup"


def test_command_line_wins_over_ini(pytester):
    pytester.makeini("[pytest]\npoolchaos_leaks = cleanup\npoolchaos_rerun = 2\n")
    settings = resolved(pytester, "--poolchaos-leaks=fail")
    assert settings.leaks == "fail"
    assert settings.rerun == 2
    assert settings.bisect is True  # on by default once reruns are on


def test_bisect_can_be_turned_off_while_reruns_are_on(pytester):
    assert resolved(pytester, "--poolchaos-rerun=3", "--poolchaos-no-bisect").bisect is False


def test_watch_accepts_lines_and_repeats(pytester):
    # targets must exist: they are imported at start-up (a typo is a usage error)
    pytester.makepyfile(app_config="SETTINGS = {}\n", app_pool="REGISTRY = []\n")
    pytester.syspathinsert()
    pytester.makeini(
        "[pytest]\npoolchaos_watch =\n    app_config:SETTINGS\n    app_pool:REGISTRY\n"
    )
    assert resolved(pytester).watch == ("app_config:SETTINGS", "app_pool:REGISTRY")
    settings = resolved(pytester, "--poolchaos-watch=os.path:join", "--poolchaos-watch=os:sep")
    assert settings.watch == ("os.path:join", "os:sep")


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (["--poolchaos-leaks=loud"], "", "--poolchaos-leaks / poolchaos_leaks: expected one of "
         "warn, cleanup, fail, got 'loud' (from the command line --poolchaos-leaks)"),
        ([], "poolchaos_isolate = full", "poolchaos_isolate: expected one of off, restore, "
         "got 'full' (from the ini key poolchaos_isolate)"),
        (["--poolchaos-rerun=-1"], "", "expected a whole number >= 0, got '-1'"),
        ([], "poolchaos_rerun = lots", "expected a whole number >= 0, got 'lots'"),
        (["--poolchaos-bisect-budget=0"], "", "expected a whole number >= 1"),
        (["--poolchaos-cleanup-grace=soon"], "", "expected a number of seconds from 0 to "),
        (["--poolchaos-watch=nocolon"], "", "expected package.module:attribute entries"),
        ([], "poolchaos_bisect = maybe", "poolchaos_bisect"),
        (["--poolchaos-confirm=always"], "", "--poolchaos-confirm / poolchaos_confirm: "
         "expected one of auto, off, got 'always'"),
        ([], "poolchaos_confirm = yes", "poolchaos_confirm: expected one of auto, off"),
        (["--poolchaos-confirm-seconds=-3"], "", "--poolchaos-confirm-seconds / "
         "poolchaos_confirm_seconds: expected a number of seconds from 0 to 86400"),
    ],
)
def test_bad_values_are_usage_errors_naming_option_and_accepted_values(
    pytester, args, ini, expected
):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "poolchaos", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_paths_are_relative_to_the_invocation_directory(pytester):
    settings = resolved(pytester, "--poolchaos-json=out/report.json")
    assert settings.json == pytester.path / "out" / "report.json"
