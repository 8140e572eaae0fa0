"""Pool monitoring across the application's processes.

Each web (or task) worker has its own pools, and ``manage.py pool_stats`` runs in yet
another process, so statistics travel through small files:

* ``publisher``: every process that uses a pool writes a snapshot of its pools' statistics
  now and then (a background thread, fork-safe, removed at exit);
* ``store``: the directory of snapshots (private to the app's user), atomic writes,
  pruning of dead processes, and the counters of processes that exited;
* ``aggregate``: snapshots → statistics per alias and per process;
* ``health``: the guide's thresholds; ``server``: the database's own view of its
  sessions; ``prometheus``, ``views``, ``healthcheck``: ways to expose all of it.

See docs/monitoring.md.
"""
