"""Settings: everything a DATABASES entry of ours can say, read and validated.

* ``options``: the POOL schema (names, types, per-vendor defaults) and value parsing;
* ``validation``: a DATABASES entry's problems (for the system checks) and its effective
  POOL options (for the backends);
* ``dataflow_config``: the guide's ``DataFlowConfig``, turned into a DATABASES entry;
* ``database_url``: ``DATABASE_URL`` parsing, with pool options in the query string;
* ``sizing``: the guide's pool-sizing helpers;
* ``engines``: the one table of vendors and our ENGINE paths.

Nothing here imports the pool engine or a database driver: a settings file may import
any of it.
"""
