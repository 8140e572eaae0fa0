"""DATABASES and DATAFLOW_ROUTING of the example site, from three environment variables.

=================  ======================================================================
``DATABASE_URL``   the primary (alias ``default``): every write, and every read when
                   there is no replica. Unset: the SQLite file ``db.sqlite3`` beside
                   manage.py (``DataFlowConfig``'s default).
``REPLICA_URL``    a read replica (alias ``replica``): reads go there.
``ANALYTICS_URL``  an analytics database (alias ``analytics``): long reporting queries.
=================  ======================================================================

Each URL becomes a pooled DATABASES entry through ``DataFlowConfig`` (which parses it with
django-environ). The pool sizes are the DataFlow guide's "Connection Strategies": with a
replica, few connections on the write primary and many on the replica; a handful with a
five-minute timeout for analytics. A lone primary keeps the vendor defaults (PostgreSQL
20 + 30 overflow, MySQL 30 + 50, SQLite 5 + 0).

With a replica or an analytics database, ``DataFlowRouter`` sends reads to the replica,
writes to the primary, and the queries inside ``use_analytics()`` to the analytics
database (``routing()``).
"""

from __future__ import annotations

from typing import Any

import environ

from django_dataflow.settings.dataflow_config import DataFlowConfig

# The guide's "Write Master Pool": fewer connections to reduce the primary's load.
WRITE_POOL = {"pool_size": 10, "pool_max_overflow": 15, "pool_recycle": 1800}
# The guide's "Read Replica Pool": more connections for read-heavy work.
READ_POOL = {"pool_size": 40, "pool_max_overflow": 60, "pool_recycle": 7200}
# The guide's "Analytics Pool": few connections, long queries, never recycled mid-query.
# The guide leaves the overflow unset; the vendor default (30 on PostgreSQL) would let 35
# long queries run at once, so it is 0 here: a sixth report waits for a free connection.
ANALYTICS_POOL = {
    "pool_size": 5,
    "pool_max_overflow": 0,
    "pool_timeout": 300.0,
    "pool_recycle": None,
}


def databases(env: environ.Env) -> dict[str, dict[str, Any]]:
    """The DATABASES setting for the URLs in the environment."""
    primary_url = env.str("DATABASE_URL", default="") or None
    replica_url = env.str("REPLICA_URL", default="")
    analytics_url = env.str("ANALYTICS_URL", default="")

    primary_pool = WRITE_POOL if replica_url else {}
    entries = {"default": DataFlowConfig(database_url=primary_url, **primary_pool).as_database()}
    if replica_url:
        # In Django's test runner the replica mirrors the primary's test database.
        entries["replica"] = DataFlowConfig(database_url=replica_url, **READ_POOL).as_database(
            TEST={"MIRROR": "default"}
        )
    if analytics_url:
        entries["analytics"] = DataFlowConfig(
            database_url=analytics_url, **ANALYTICS_POOL
        ).as_database(TEST={"MIRROR": "default"})
    return entries


def routing(entries: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The DATAFLOW_ROUTING setting: one set, the primary with what else there is; None
    (no routing) when the primary is alone."""
    database_set: dict[str, Any] = {}
    if "replica" in entries:
        database_set["replicas"] = ["replica"]
    if "analytics" in entries:
        database_set["analytics"] = "analytics"
    return {"default": database_set} if database_set else None
