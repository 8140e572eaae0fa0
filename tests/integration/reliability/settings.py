"""Settings of the reliability scenarios (docs/reliability.md).

    bin/reliability-servers up
    pytest -m reliability --ds=tests.integration.reliability.settings tests/integration/reliability

Each scenario has an alias of its own, with the pool it needs, on a dedicated server
(PostgreSQL 5440, MariaDB 3340; see servers.py), in a database made for this run.
``default`` is the shared PostgreSQL of the other suites: the root conftest checks that
it answers, and the PgBouncer scenario goes through it.
"""

import os

from django_dataflow.settings.dataflow_config import DataFlowConfig
from tests.dbsettings.base import *  # noqa: F403
from tests.dbsettings.base import INSTALLED_APPS, mysql_settings, postgresql_settings
from tests.integration.reliability.servers import HOST, MARIADB_PORT, PG_PORT, PGBOUNCER_PORT

DATABASE_VENDOR = "postgresql"
# One database per run on each dedicated server, dropped at the end of the run (a
# child process, such as pool_stats run by a test, is given the same name).
RUN_DATABASE = os.environ.get(
    "DATAFLOW_RELIABILITY_DATABASE", f"dataflow_reliability_{os.getpid()}"
)


def dedicated(vendor, **pool):
    make, port = (
        (postgresql_settings, PG_PORT) if vendor == "postgresql" else (mysql_settings, MARIADB_PORT)
    )
    return make(
        PORT=str(port),
        NAME=RUN_DATABASE,
        POOL={"pool_pre_ping": True, **pool},
        OPTIONS={"connect_timeout": 5},
    )


# A restart: 20 threads on 10 + 5 connections (some wait), and a pool_timeout long
# enough that a request failing only after it would stand out.
RESTART_POOL = {"pool_size": 10, "pool_max_overflow": 5, "pool_timeout": 10.0}
# Kills: every connection of the pool is killed at once.
KILL_POOL = {"pool_size": 5, "pool_max_overflow": 0, "pool_timeout": 10.0}
# Overload: the 5 + 5 with a short timeout, and overflow connections that go
# away 1 s after the burst instead of 30.
OVERLOAD_POOL = {
    "pool_size": 5,
    "pool_max_overflow": 5,
    "pool_timeout": 1.0,
    "pool_overflow_idle_timeout": 1.0,
}


def through_pgbouncer(**overrides):
    entry = {"PORT": str(PGBOUNCER_PORT), "NAME": RUN_DATABASE, "OPTIONS": {"connect_timeout": 5}}
    return postgresql_settings(**{**entry, **overrides})


BOUNCER_URL = f"postgres://postgres@{HOST}:{PGBOUNCER_PORT}/{RUN_DATABASE}"

DATABASES = {
    "default": postgresql_settings(),
    "pg_restart": dedicated("postgresql", **RESTART_POOL),
    "maria_restart": dedicated("mysql", **RESTART_POOL),
    "pg_kill": dedicated("postgresql", **KILL_POOL),
    "maria_kill": dedicated("mysql", **KILL_POOL),
    "pg_overload": dedicated("postgresql", **OVERLOAD_POOL),
    # PgBouncer (transaction mode) in front of the dedicated PostgreSQL: with the
    # documented settings, with server-side cursors left on, with prepared statements.
    "bouncer": through_pgbouncer(
        POOL={**KILL_POOL, "behind_transaction_pooler": True}, DISABLE_SERVER_SIDE_CURSORS=True
    ),
    "bouncer_cursors": through_pgbouncer(POOL=dict(KILL_POOL)),
    "bouncer_prepared": DataFlowConfig(
        database_url=BOUNCER_URL, statement_cache_size=5, **KILL_POOL
    ).as_database(),
    # PgBouncer's admin console, for pool_stats --server.
    "pgbouncer": through_pgbouncer(NAME="pgbouncer"),
}
INSTALLED_APPS = [*INSTALLED_APPS, "tests.integration.reliability.counterapp"]
# The test process itself publishes nothing; the web and Celery workers do.
DATAFLOW_STATS_PUBLISH = False
