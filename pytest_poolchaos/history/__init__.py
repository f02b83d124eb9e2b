"""Memory across runs: a SQLite store of every run's outcomes, read back into each report.

Only the process that reports (a serial run or the xdist controller) opens the store, once, at
session end; ``sqlite3`` is imported there and nowhere else, so loading the plugin costs
nothing. The modules:

* ``stats``: pure arithmetic over one test's past (flips, rates, percentiles, slow-downs) and
  the phrases the reports print;
* ``store``: the SQLite file (schema, one write transaction per run, broken files moved aside);
* ``session``: the controller's side (this run's results in, earlier runs' history out);
* ``vcs``: the commit and branch a run tested;
* ``junit_import``: seeding the store from JUnit XML files of earlier CI runs;
* ``table``: the ``poolchaos history`` listing.
"""
