from __future__ import annotations

import os

import flags
from flags import RemoteProvider, checkout_page, is_enabled, load_file, wait_until


def test_unknown_flag_is_off():
    assert not is_enabled("no_such_flag")


def test_remote_provider_syncs():
    provider = RemoteProvider(lambda: {"dark_mode": True}).start()
    wait_until(lambda: provider.synced, timeout=2)
    assert provider.flags == {"dark_mode": True}


# Luo et al. FSE 2014 "Async Wait": a polling helper with a deadline gives up before the remote
# sync finishes.
def test_remote_flags_arrive_before_first_request():
    provider = RemoteProvider(lambda: {"checkout_v2": True}, delay=1.0).start()
    wait_until(lambda: provider.synced, timeout=0.3)
    assert provider.flags["checkout_v2"]


# iDFlakies/iPFlakies polluter pattern through the environment: an override set to test it and
# never removed.
def test_environment_override_turns_flag_on():
    os.environ["FLAG_DARK_MODE"] = "on"
    assert is_enabled("dark_mode")


def test_dark_mode_is_off_by_default():
    assert not is_enabled("dark_mode")


# iPFlakies: a module-level registry changed in place by one test and read by a later one.
def test_admin_enables_new_checkout():
    flags.REGISTRY["checkout_v2"] = True
    assert checkout_page() == "checkout-v2.html"


def test_checkout_serves_classic_page():
    assert checkout_page() == "checkout.html"


# Working-directory pollution: a test moves into a scratch directory and stays there; a later
# test's relative path reads the scratch copy instead of the project's file.
def test_flags_file_can_be_written(tmp_path):
    os.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "flags.json").write_text('{"beta_banner": false}')
    assert load_file() == {"beta_banner": False}


def test_beta_banner_enabled_in_project_flags():
    assert load_file()["beta_banner"] is True
