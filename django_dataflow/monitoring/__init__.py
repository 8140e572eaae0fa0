"""Pool monitoring across the application's processes.

Each web (or task) worker has its own pools, and ``manage.py pool_stats`` runs in yet
another process, so statistics travel through small files:

* ``publisher``: every process that uses a pool writes a snapshot of its pools' statistics
  now and then (a background thread, fork-safe, removed at exit);
* ``store``: the directory of snapshots (private to the app's user), atomic writes,
  pruning of dead processes (by the publishers; readers never write), and the counters
  of processes that exited; ``safedir`` opens and checks the directory and reaches every
  file through it; ``shapes`` says what a valid snapshot holds;
* ``aggregate``: snapshots → statistics per alias and per process (``collect()``);
* ``health``: the guide's thresholds, applied to every process's pools;
* ``server``: the database's own view of its sessions (``pool_stats --server``);
  ``pgbouncer``: the same for PgBouncer's admin console (its ``SHOW POOLS``);
* ``render``: the pools' table of ``pool_stats``; ``text``: the column and duration
  formatting every table shares;
* ``prometheus``, ``views``, ``healthcheck``: ways to expose all of it (metrics, HTTP,
  django-health-check).

See docs/monitoring.md.
"""
