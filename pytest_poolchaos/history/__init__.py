"""Memory across runs: a SQLite store of every run's outcomes, read back into each report.

Only the process that reports (a serial run or the xdist controller) touches the history, once,
at session end. A run with a failure or a slow test opens the store (``sqlite3`` is imported
there and nowhere else); a run whose tests all passed quickly has nothing to read and appends
itself to the pending file, which the next opening of the store folds in. The modules:

* ``stats``: pure arithmetic over one test's past (flips, rates, percentiles, slow-downs) and
  the phrases the reports print;
* ``pending``: the runs waiting to enter the store (a green run's record, no SQLite);
* ``store``: the SQLite file (schema, one write transaction per run, broken files moved aside);
* ``session``: the controller's side (this run's results in, earlier runs' history out);
* ``vcs``: the commit and branch a run tested;
* ``junit_import``: seeding the store from JUnit XML files of earlier CI runs;
* ``table``: the ``poolchaos history`` listing.
"""

#: Passes quicker than this are packed into one list per run instead of a row each.
QUICK_S = 0.02
#: A slow-down is flagged only when a run took at least this much longer than the test's
#: median (so millisecond jitter on a busy CI machine is not news); a run with no test this
#: slow and no failure reads nothing from the history.
SLOW_MARGIN_S = 0.1
