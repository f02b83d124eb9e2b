"""The confirming run (on by default): failures once more, together, in one fresh pytest.

conftest's BASE_ARGS turn it off for every other test; these pass --poolchaos-confirm=auto
(the default) back on, after it.
"""

from __future__ import annotations

import textwrap

import pytest

CONFIRM = "--poolchaos-confirm=auto"

SUITE = """
    import os

    def test_sets_mode():
        os.environ["POOLCHAOS_CONFIRM_MODE"] = "legacy"

    def test_fine():
        pass

    def test_victim():
        assert os.environ.get("POOLCHAOS_CONFIRM_MODE") != "legacy", "POOLCHAOS_CONFIRM_MODE"

    def test_always_wrong():
        assert 1 + 1 == 3
"""


def test_default_run_confirms_failures_in_one_batch_and_names_the_polluter(chaostester):
    chaostester.pytester.makepyfile(test_suite=SUITE)
    run = chaostester.run(CONFIRM)
    # outcomes and the exit status are pytest's
    run.result.assert_outcomes(passed=2, failed=2)
    assert run.ret == pytest.ExitCode.TESTS_FAILED

    wrong = run.diagnosis("test_always_wrong")
    assert [(a["mode"], a["outcome"]) for a in wrong["attempts"]] == [("confirm", "failed")]
    assert wrong["verdict"] == "deterministic"
    assert wrong["polluter"] is None

    victim = run.diagnosis("test_victim")
    modes = [a["mode"] for a in victim["attempts"]]
    assert modes[:3] == ["confirm", "confirm", "pair"]  # two passes alone, then the order
    assert victim["verdict"] == "order-dependent"
    assert victim["polluter"] == "test_suite.py::test_sets_mode"
    assert victim["polluter_search"]["method"] == "ledger"
    assert victim["polluter_search"]["runs"] == 1
    # the first batch held both failures: one subprocess, not one per test
    assert "with the 1 other failure(s)" in victim["attempts"][0]["message"]
    line = [ln for ln in run.text().splitlines() if "confirming run of 2 failure(s)" in ln]
    assert line, run.text()
    assert "3 pytest subprocess run(s)" in line[0]
    assert "1 deterministic, 1 order-dependent" in line[0]


def test_a_case_failing_after_a_sibling_that_passed_in_the_batch_runs_again_without_it(
        chaostester):
    # Each case breaks the cases after it (the first to run claims a module-level slot, as
    # parametrized cases sharing a module one of them imports do). In the batch of the two
    # failures the first passes and breaks the second again: that second failure is no run
    # without neighbours, and run again without its sibling it passes. Neither is a
    # deterministic failure.
    chaostester.pytester.makepyfile(test_slots="""
        import pytest

        CLAIMED = []

        @pytest.mark.parametrize("n", range(3))
        def test_claims_the_slot(n):
            assert not CLAIMED, f"slot taken by case {CLAIMED[0]}"
            CLAIMED.append(n)
    """)
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(passed=1, failed=2)
    last = run.diagnosis("test_claims_the_slot[2]")
    modes = [(a["mode"], a["outcome"]) for a in last["attempts"]]
    assert modes[:2] == [("pair", "failed"), ("confirm", "passed")], modes
    assert "after test_slots.py::test_claims_the_slot[1], which passed in the same run" in \
        last["attempts"][0]["message"]
    for case in ("test_claims_the_slot[1]", "test_claims_the_slot[2]"):
        found = run.diagnosis(case)
        assert found["verdict"] == "order-dependent", (case, found["attempts"])
        assert found["polluter"] == "test_slots.py::test_claims_the_slot[0]"


def test_confirm_off_names_the_ledger_suspect_without_a_run(chaostester):
    chaostester.pytester.makepyfile(test_suite=SUITE)
    run = chaostester.run("--poolchaos-confirm=off")
    run.result.assert_outcomes(passed=2, failed=2)
    victim = run.diagnosis("test_victim")
    assert victim["category"] == "config-pollution"
    assert victim["attempts"] == []
    assert victim["polluter"] == "test_suite.py::test_sets_mode"
    assert victim["polluter_search"] == {"method": "suspect", "runs": 0, "seconds": 0.0}
    assert run.diagnosis("test_always_wrong")["polluter"] is None
    assert "confirming run" not in run.text()


def test_no_confirming_run_when_every_test_failed(chaostester):
    chaostester.pytester.makepyfile(
        """
        def test_one():
            assert 1 == 2

        def test_two():
            assert 2 == 3
        """
    )
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(failed=2)
    assert run.diagnosis("test_one")["attempts"] == []
    assert "no confirming run: every test failed" in run.text()


def test_no_confirming_run_beyond_its_time_budget(chaostester):
    chaostester.pytester.makepyfile(test_suite=SUITE)
    run = chaostester.run(CONFIRM, "--poolchaos-confirm-seconds=1")
    run.result.assert_outcomes(passed=2, failed=2)
    assert run.diagnosis("test_victim")["attempts"] == []
    assert "more than --poolchaos-confirm-seconds=1" in run.text()


def test_a_test_flaky_on_its_own_never_gets_a_polluter(chaostester):
    # It fails on its 1st and 3rd run whatever ran before it, and an earlier test left a value
    # its failure names: the confirming run passes it once, the second look fails it again.
    chaostester.pytester.makepyfile(
        test_flaky="""
        import os
        from pathlib import Path

        def test_sets_mode():
            os.environ["POOLCHAOS_CONFIRM_MODE"] = "legacy"

        def test_fine():
            pass

        def test_random_flake():
            counter = Path("runs")
            runs = int(counter.read_text()) + 1 if counter.exists() else 1
            counter.write_text(str(runs))
            mode = os.environ.get("POOLCHAOS_CONFIRM_MODE", "legacy")
            assert runs % 2 == 0, f"POOLCHAOS_CONFIRM_MODE={mode} on run {runs}"
        """
    )
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(passed=2, failed=1)
    flake = run.diagnosis("test_random_flake")
    assert [a["outcome"] for a in flake["attempts"]] == ["passed", "failed"]
    assert flake["verdict"] == "flaky"
    assert flake["polluter"] is None
    assert flake["polluter_search"] is None


MANY = """
    import os
    from pathlib import Path

    def test_sets_alpha():
        os.environ["POOLCHAOS_ALPHA"] = "on"

    def test_alpha_is_off():
        value = os.environ.get("POOLCHAOS_ALPHA")
        assert value != "on", "POOLCHAOS_ALPHA"

    def test_sets_beta():
        os.environ["POOLCHAOS_BETA"] = "on"

    def test_beta_is_off():
        value = os.environ.get("POOLCHAOS_BETA")
        assert value != "on", "POOLCHAOS_BETA"

    def test_sets_gamma():
        os.environ["POOLCHAOS_GAMMA"] = "on"

    def test_gamma_is_off():
        value = os.environ.get("POOLCHAOS_GAMMA")
        assert value != "on", "POOLCHAOS_GAMMA"

    def test_random_flake():
        # fails on its odd runs whatever ran before it, and names an earlier test's leftover
        counter = Path("runs")
        runs = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(runs))
        assert runs % 2 == 0, f"POOLCHAOS_GAMMA on run {runs}"
"""


def test_many_victims_best_suspects_are_checked_in_two_runs(chaostester):
    # Three polluter/victim pairs: each victim's best suspect runs before it in one run and
    # after it in another, so all three are confirmed by two subprocesses, not three pairs.
    # (The failures name only their own key: an assertion showing all of os.environ would
    # name every earlier leftover.)
    chaostester.pytester.makepyfile(test_many=MANY)
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(passed=3, failed=4)
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    for name in ("alpha", "beta", "gamma"):
        victim = run.diagnosis(f"test_{name}_is_off")
        assert victim["verdict"] == "order-dependent"
        assert victim["polluter"] == f"test_many.py::test_sets_{name}"
        assert victim["polluter_search"]["method"] == "ledger"
        assert victim["polluter_search"]["runs"] == 2
        first, control = victim["attempts"][-2:]
        assert (first["mode"], first["outcome"]) == ("pair", "failed")
        assert (control["mode"], control["outcome"]) == ("pair", "passed")
    # a test flaky on its own is never among them, and never gets a polluter
    flake = run.diagnosis("test_random_flake")
    assert flake["verdict"] == "flaky"
    assert flake["polluter"] is None
    assert flake["polluter_search"] is None
    line = [ln for ln in run.text().splitlines() if "confirming run of 4 failure(s)" in ln]
    assert line, run.text()
    # the batch, the second look, the suspects before and after their victims
    assert "4 pytest subprocess run(s)" in line[0]


def test_a_victim_failing_without_its_suspect_too_is_searched_on(chaostester):
    # test_delta_is_off names POOLCHAOS_DELTA, so test_sets_delta is its best suspect, but
    # POOLCHAOS_ALPHA breaks it: it fails in the run without its suspect as well, so that
    # run does not confirm the suspect, and its own search (next suspects, then bisection)
    # finds the real polluter.
    chaostester.pytester.makepyfile(test_many=MANY + '''

    def test_sets_delta():
        os.environ["POOLCHAOS_DELTA"] = "on"

    def test_delta_is_off():
        value = os.environ.get("POOLCHAOS_ALPHA")
        assert value != "on", "POOLCHAOS_DELTA"
''')
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(passed=4, failed=5)
    for name in ("alpha", "beta", "gamma"):
        assert run.diagnosis(f"test_{name}_is_off")["polluter"] == f"test_many.py::test_sets_{name}"
    delta = run.diagnosis("test_delta_is_off")
    assert delta["verdict"] == "order-dependent"
    assert delta["polluter"] == "test_many.py::test_sets_alpha"
    tried = [a["message"] for a in delta["attempts"] if a["mode"] == "pair"]
    assert tried[1] == "the same run with test_many.py::test_sets_delta after it: failed"
    # that suspect counts as tried: no pair run of it alone follows
    assert not any(m.startswith("after 1 earlier test(s) from test_many.py::test_sets_delta")
                   for m in tried)


def test_victims_whose_first_suspect_is_wrong_get_their_next_in_one_more_round(chaostester):
    # Each failure names a decoy's key too, and the decoy ran last: it is the first suspect.
    # The first round clears the three decoys in one run; the second confirms the polluters.
    body = "\n".join(f"""
    def test_sets_{name}():
        os.environ["POOLCHAOS_{name.upper()}"] = "on"

    def test_decoy_{name}():
        os.environ["POOLCHAOS_DECOY_{name.upper()}"] = "on"

    def test_{name}_is_off():
        value = os.environ.get("POOLCHAOS_{name.upper()}")
        assert value != "on", "POOLCHAOS_{name.upper()} (POOLCHAOS_DECOY_{name.upper()})"
""" for name in ("alpha", "beta", "gamma"))
    chaostester.pytester.makepyfile(test_decoys="import os\n" + textwrap.dedent(body))
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(passed=6, failed=3)
    for name in ("alpha", "beta", "gamma"):
        victim = run.diagnosis(f"test_{name}_is_off")
        assert victim["verdict"] == "order-dependent"
        assert victim["polluter"] == f"test_decoys.py::test_sets_{name}"
        # the decoys' round (no victim failed: no control run), then the polluters' two
        assert victim["polluter_search"]["runs"] == 3
        pairs = [a for a in victim["attempts"] if a["mode"] == "pair"]
        assert pairs[0]["message"].startswith(f"after test_decoys.py::test_decoy_{name},")
        assert pairs[0]["outcome"] == "passed"
    assert "5 pytest subprocess run(s)" in run.text()


def test_search_runs_stay_light_when_the_ini_file_names_the_plugin(chaostester):
    # The plugin's ini keys, a conftest implementing its hook, its marker and strict options:
    # the search's runs leave the plugin out and still start, and still tell pass from fail.
    chaostester.pytester.makeini(
        """
        [pytest]
        console_output_style = classic
        addopts = --strict-config --strict-markers
        poolchaos_watch = os:sep
        """
    )
    chaostester.pytester.makeconftest(
        """
        def pytest_poolchaos_probe(config):
            return None
        """
    )
    chaostester.pytester.makepyfile(test_many=MANY.replace(
        "    def test_random_flake():", "    @pytest.mark.poolchaos(ignore_leaks=('thread',))\n"
        "    def test_random_flake():").replace("import os\n", "import os\n    import pytest\n", 1))
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(passed=3, failed=4)
    for name in ("alpha", "beta", "gamma"):
        victim = run.diagnosis(f"test_{name}_is_off")
        assert victim["polluter"] == f"test_many.py::test_sets_{name}"
        assert victim["polluter_search"]["runs"] == 2
        assert victim["attempts"][-1]["outcome"] == "passed"  # the run after its suspect


def test_light_runs_unless_the_ini_file_sets_what_changes_an_outcome(tmp_path):
    from types import SimpleNamespace

    from pytest_poolchaos.diagnose.runner import _can_go_light

    def light(ini, *args):
        path = tmp_path / "pytest.ini"
        path.write_text("[pytest]\n" + ini)
        return _can_go_light(SimpleNamespace(
            inipath=path, invocation_params=SimpleNamespace(args=args)))

    assert light("")
    assert light("poolchaos_watch = pkg.mod:VALUE\npoolchaos_json = out.json\n")
    assert not light("poolchaos_isolate = restore\n")
    assert not light("poolchaos_leaks = fail\n")
    assert not light("addopts = -q --poolchaos-leaks=fail\n")
    assert not light("addopts = -p poolchaos\n")
    assert not light("", "-o", "poolchaos_isolate=restore")
    assert light("addopts = -q\n", "-o", "poolchaos_watch=pkg.mod:VALUE")


def test_confirming_run_under_xdist_runs_on_the_controller(chaostester):
    pytest.importorskip("xdist")
    chaostester.pytester.makepyfile(
        test_x="""
        def test_ok():
            pass

        def test_wrong():
            assert 1 + 1 == 3
        """
    )
    run = chaostester.run(CONFIRM, "-n", "2", subprocess=True)
    run.result.assert_outcomes(passed=1, failed=1)
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    wrong = run.diagnosis("test_wrong")
    assert [(a["mode"], a["outcome"]) for a in wrong["attempts"]] == [("confirm", "failed")]
    assert run.text().count("confirming run of 1 failure(s)") == 1


def test_a_child_whose_exit_hangs_is_not_waited_for_past_its_last_line(chaostester):
    # The failing test leaves a non-daemon thread that never ends: interpreter exit joins it
    # forever, in the session (ended by --poolchaos-exit-timeout) and in the confirming child.
    chaostester.pytester.makepyfile(
        """
        import threading

        NEVER = threading.Event()

        def test_fine():
            pass

        def test_leaves_a_thread_behind():
            threading.Thread(target=NEVER.wait, name="stuck-forever").start()
            assert 1 + 1 == 3
        """
    )
    run = chaostester.run(CONFIRM, "--poolchaos-confirm-seconds=40",
                          "--poolchaos-exit-timeout=1", subprocess=True, timeout=110)
    run.result.assert_outcomes(passed=1, failed=1)
    stuck = run.diagnosis("test_leaves_a_thread_behind")
    assert [(a["mode"], a["outcome"]) for a in stuck["attempts"]] == [("confirm", "failed")]
    line = next(ln for ln in run.text().splitlines() if "confirming run of 1 failure" in ln)
    # all 40 s of the budget before the child's finished line was read
    seconds = float(line.split(" s;")[0].rsplit(" ", 1)[1])
    assert seconds < 20, line


def test_a_suspects_run_that_ended_before_its_victims_confirms_nothing(chaostester):
    # Each decoy is its victim's first suspect (its key is named too, and it ran last), and in
    # any run after the session it ends the pytest process: the run of suspects-then-victims
    # never reaches a victim. A victim that never ran did not fail: the decoys are not
    # confirmed by the control run (where the victims pass before them), and the next round
    # confirms the real polluters.
    body = "\n".join(f"""
    def test_sets_{name}():
        os.environ["POOLCHAOS_{name.upper()}"] = "on"

    def test_decoy_{name}():
        os.environ["POOLCHAOS_DECOY_{name.upper()}"] = "on"
        if Path("session-over").exists():
            os._exit(3)

    def test_{name}_is_off():
        value = os.environ.get("POOLCHAOS_{name.upper()}")
        assert value != "on", "POOLCHAOS_{name.upper()} (POOLCHAOS_DECOY_{name.upper()})"
""" for name in ("alpha", "beta", "gamma"))
    chaostester.pytester.makepyfile(test_decoys="import os\nfrom pathlib import Path\n"
                                    + textwrap.dedent(body) + textwrap.dedent("""
    def test_zz_session_over():
        Path("session-over").write_text("")
    """))
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(passed=7, failed=3)
    for name in ("alpha", "beta", "gamma"):
        victim = run.diagnosis(f"test_{name}_is_off")
        assert victim["polluter"] == f"test_decoys.py::test_sets_{name}"
        assert victim["polluter_search"]["method"] == "ledger"
        pairs = [a for a in victim["attempts"] if a["mode"] == "pair"]
        assert pairs[0]["message"].startswith(f"after test_decoys.py::test_decoy_{name},")
        assert "before it finished" in pairs[0]["message"]


SHARED_LIB = """
    import socket
    import threading
    from concurrent.futures import ThreadPoolExecutor

    EXECUTOR = ThreadPoolExecutor(max_workers=1)


    def double_all(items):
        return [f.result(5) for f in [EXECUTOR.submit(lambda x: 2 * x, i) for i in items]]


    def shutdown():
        EXECUTOR.shutdown(wait=True)


    class Server:
        def __init__(self):
            self.listener = socket.create_server(("127.0.0.1", 0))
            self.listener.settimeout(0.05)
            self.port = self.listener.getsockname()[1]
            self.stopped = threading.Event()
            self.thread = threading.Thread(target=self.serve, daemon=True)
            self.thread.start()

        def serve(self):
            while not self.stopped.is_set():
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                conn.close()
            self.listener.close()

        def stop(self):
            self.stopped.set()
            self.thread.join(5)
"""

SHARED_SUITE = """
    import socket

    import pytest

    import sharedlib


    @pytest.fixture(scope="module")
    def server():
        srv = sharedlib.Server()
        yield srv
        srv.stop()


    def test_exit_hook_waits():
        assert sharedlib.double_all([1]) == [2]
        sharedlib.shutdown()


    def test_doubles_in_order():
        assert sharedlib.double_all([2, 1]) == [4, 2]


    def test_stop_is_idempotent(server):
        server.stop()
        server.stop()


    def test_connects(server):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


    def test_own_pool_after_its_block():
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(abs, -1).result(5) == 1
        pool.submit(abs, -2)
"""


def test_a_shared_executor_or_server_an_earlier_test_stopped_is_not_read_as_its_own(
        chaostester):
    # A module's executor an earlier test shut down, a module fixture's server an earlier
    # test stopped. Without reruns, a module global found shut down is nothing of the
    # victim's own: the lifecycle reading is a guess (0.5) and its restatement only
    # supports; the confirming run proves both pass alone, and the pollution reading wins.
    # Nearest negative: the test's own pool, used after its own block shut it down, stays
    # lifecycle at the rules' own scores.
    chaostester.pytester.makepyfile(sharedlib=textwrap.dedent(SHARED_LIB),
                                    test_shared=textwrap.dedent(SHARED_SUITE))
    guessed = chaostester.run("--poolchaos-confirm=off")
    shared = {r["id"]: r["score"] for r in guessed.diagnosis("test_doubles_in_order")["rules"]}
    assert shared == {"lifecycle.pool-shut-down": 0.5, "lifecycle.refused-by-state": 0.3}
    own = guessed.diagnosis("test_own_pool_after_its_block")
    assert own["category"] == "lifecycle", own
    assert {r["id"]: r["score"] for r in own["rules"]}["lifecycle.pool-shut-down"] == 0.9
    assert own["confidence"] >= 0.85
    confirmed = chaostester.run(CONFIRM)
    for victim in ("test_doubles_in_order", "test_connects"):
        diagnosis = confirmed.diagnosis(victim)
        assert diagnosis["category"] == "config-pollution", (victim, diagnosis)
    assert confirmed.diagnosis("test_own_pool_after_its_block")["category"] == "lifecycle"


def test_a_test_broken_by_a_module_collected_after_it_is_not_called_random(chaostester):
    # Seen on a worker-pool library's suite: a function registered by name at import, and a
    # module collected later registering its own under the same name. The test fails in the
    # whole run, passes alone and after every earlier test: the imports are the cause.
    pytester = chaostester.pytester
    pytester.makepyfile(
        registry="""
        FUNCTIONS = {}

        def register(function):
            FUNCTIONS[function.__name__] = function
            return function
        """,
        test_a_sums="""
        import registry

        @registry.register
        def work(first, second):
            return first + second

        def test_earlier():
            pass

        def test_sum():
            assert registry.FUNCTIONS["work"](1, 2) == 3
        """,
        test_b_later="""
        import registry

        @registry.register
        def work(only):
            return only

        def test_later():
            assert registry.FUNCTIONS["work"](5) == 5
        """,
    )
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(passed=2, failed=1)
    victim = run.diagnosis("test_a_sums.py::test_sum")
    assert victim["verdict"] == "order-dependent"
    assert victim["polluter"] is None
    last = victim["attempts"][-1]
    assert (last["mode"], last["outcome"]) == ("bisect", "failed")
    assert "test modules collected" in last["message"]
    assert any("importing one of them changes what it uses" in line
               for line in victim["evidence"]), victim["evidence"]
    assert not any("fails at random" in line for line in victim["evidence"])
