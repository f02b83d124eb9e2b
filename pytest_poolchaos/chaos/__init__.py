"""Chaos mode: seeded load and scheduler noise that exposes load-sensitive flaky tests.

Nothing here is imported unless ``--poolchaos-chaos``, ``--poolchaos-rerun-chaos``,
``--poolchaos-hunt`` or the ``chaos`` fixture asks for it: a default run pays nothing.

* ``spec``: ``off | light | heavy | SPEC`` parsed into a frozen, seeded ``ChaosSpec``;
* ``stress``: CPU-burning helper processes that can never outlive the session;
* ``noise``: seeded delays at thread start, executor submit, ``Popen``, process start and
  socket connect, slow-starting workers, and a short ``sys.setswitchinterval``;
* ``session``: the plugin object that applies a spec to a test session (and its xdist workers);
* ``fixture``: the ``chaos`` fixture's tools; ``hunt``: the quiet-vs-noisy hunting runs.
"""
