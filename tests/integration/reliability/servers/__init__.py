"""Dedicated database servers and PgBouncer for the reliability scenarios.

The scenarios restart servers and kill their sessions, so they never touch the shared
PostgreSQL (5432) and MariaDB (3306) that other suites use. They get servers of their
own, on loopback ports of their own:

* PostgreSQL on 5440: a throwaway cluster made with ``initdb`` and run with ``pg_ctl``
  as the ``postgres`` user;
* MariaDB on 3340: a throwaway data directory made with ``mariadb-install-db`` and run
  with ``mariadbd`` as the ``mysql`` user;
* PgBouncer on 6440 (Debian's package), in transaction mode, in front of the dedicated
  PostgreSQL.

Data directories are initialised once and kept under ``/var/tmp`` (or
``DATAFLOW_RELIABILITY_DIR``), so bringing a server up again costs only its start.
Everything is idempotent: ``up()`` does nothing for a server that already answers.

    python -m tests.integration.reliability.servers up [postgresql|mariadb|pgbouncer ...]
    python -m tests.integration.reliability.servers down [...]
    python -m tests.integration.reliability.servers status
"""

from __future__ import annotations

from tests.integration.reliability.servers.base import (
    HOST,
    MARIADB_PORT,
    PG_PORT,
    PGBOUNCER_PORT,
    ROOT,
    ServerError,
)
from tests.integration.reliability.servers.mariadb import DedicatedMariaDB
from tests.integration.reliability.servers.pgbouncer import PgBouncer
from tests.integration.reliability.servers.postgres import DedicatedPostgres

SERVERS = {
    "postgresql": DedicatedPostgres,
    "mariadb": DedicatedMariaDB,
    "pgbouncer": PgBouncer,
}

__all__ = [
    "HOST",
    "MARIADB_PORT",
    "PGBOUNCER_PORT",
    "PG_PORT",
    "ROOT",
    "SERVERS",
    "DedicatedMariaDB",
    "DedicatedPostgres",
    "PgBouncer",
    "ServerError",
]
