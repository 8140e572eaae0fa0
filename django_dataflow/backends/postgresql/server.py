"""What the package asks PostgreSQL servers, and how pooled connections say who they are.

``PostgreSQLServer`` answers the questions of ``backends/server.py`` (replication lag,
connection limit, session listing, session ids) for PostgreSQL.

A DBA looking at ``pg_stat_activity`` (or ``pool_stats --server``) should see which
sessions belong to which pool of which process. PostgreSQL has a place for it,
``application_name``; by default pooled connections set it to
``"<prefix>:<alias>:<pid>"`` (prefix ``DATAFLOW_APPLICATION_NAME_PREFIX``, default
``"django-dataflow"``; None turns it off) unless the user named the application
themselves (``OPTIONS["application_name"]``, ``-c application_name=`` in
``OPTIONS["options"]``, or the ``PGAPPNAME`` environment variable).

MySQL/MariaDB keep client-sent labels (connection attributes) only in
performance_schema, which MariaDB turns off by default, and mysqlclient cannot send
custom attributes anyway. There, each process publishes the server ids of its pooled
sessions instead (see ``monitoring.publisher``), which ``--server`` matches against the
processlist; so this function leaves MySQL parameters unchanged.

The backends call ``identify_connection`` (through ``PostgreSQLServer``) once per pool,
in the process that owns it, on the parameters used to open its physical connections
(not on the parameters that choose the pool, so the pool's identity does not depend on
the pid).
"""

from __future__ import annotations

import os
from typing import Any

from django_dataflow import conf
from django_dataflow.backends.server import ServerQueries, ServerSession, SessionListing

# PostgreSQL keeps NAMEDATALEN - 1 bytes of application_name and silently cuts the rest.
PG_NAME_MAX_BYTES = 63

# Seconds since the last replayed commit, or 0 when every received WAL record is
# replayed (an idle primary commits nothing, which is not lag), and 0 on a primary.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
END
"""
LIMIT_SQL = (
    "SELECT name, setting FROM pg_settings WHERE name IN "
    "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
)
SESSIONS_SQL = """
    SELECT pid, usename, application_name, COALESCE(host(client_addr), 'local'), state,
           EXTRACT(EPOCH FROM (clock_timestamp() - state_change))::float
    FROM pg_stat_activity
    WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()
"""
COUNTS_SQL = """
    SELECT current_setting('max_connections')::int,
           current_setting('superuser_reserved_connections')::int,
           (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
"""


def _cut(text: str, max_bytes: int) -> str:
    return text.encode()[: max(0, max_bytes)].decode(errors="ignore")


def application_name(prefix: str, alias: str, pid: int) -> str:
    """``"<prefix>:<alias>:<pid>"`` within 63 bytes: the pid is kept whole, the alias and
    then the prefix are shortened if they must be."""
    tail = f":{pid}"
    room = PG_NAME_MAX_BYTES - len(tail.encode())
    alias_part = _cut(alias, max(8, room - len(prefix.encode()) - 1))
    prefix_part = _cut(prefix, room - len(alias_part.encode()) - 1)
    return f"{prefix_part}:{alias_part}{tail}"


def user_named_application(conn_params: dict[str, Any]) -> bool:
    """Did the user choose an application_name for these PostgreSQL parameters?"""
    if conn_params.get("application_name") or os.environ.get("PGAPPNAME"):
        return True
    return "application_name" in str(conn_params.get("options") or "")


def identify_connection(
    vendor: str, alias: str, conn_params: dict[str, Any], *, pid: int | None = None
) -> dict[str, Any]:
    """``conn_params`` with this process's identity added where the vendor allows it.

    Returns a new dict (or ``conn_params`` itself when nothing is added).
    """
    if vendor != "postgresql" or user_named_application(conn_params):
        return conn_params
    prefix = conf.application_name_prefix()
    if prefix is None:
        return conn_params
    name = application_name(prefix, alias, os.getpid() if pid is None else pid)
    return {**conn_params, "application_name": name}


class PostgreSQLServer(ServerQueries):
    has_server = True

    def identify_connection(self, alias: str, conn_params: dict[str, Any]) -> dict[str, Any]:
        return identify_connection("postgresql", alias, conn_params)

    def session_id(self, dbapi_connection: Any) -> Any:
        return dbapi_connection.info.backend_pid  # known to libpq since the connect

    def replication_lag(self, dbapi_connection: Any) -> float | None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(LAG_SQL)
            value = cursor.fetchone()[0]
        return float(value) if value is not None else 0.0

    def connection_limit(self, cursor: Any) -> tuple[int, str] | None:
        cursor.execute(LIMIT_SQL)
        rows = cursor.fetchall()
        if not rows:
            return None
        values = {name: int(setting) for name, setting in rows}
        limit = values["max_connections"]
        reserved = values.get("superuser_reserved_connections", 0)
        reserved += values.get("reserved_connections", 0)
        return limit - reserved, f"max_connections {limit} - {reserved} reserved"

    def sessions(self, cursor: Any, database: str) -> SessionListing:
        cursor.execute(SESSIONS_SQL, [database])
        sessions = [
            ServerSession(
                id=session,
                client=client,
                state=state or "unknown (no privilege)",
                seconds=seconds,
                label=application or f"({user})",
                application=application or "",
            )
            for session, user, application, client, state, seconds in cursor.fetchall()
        ]
        cursor.execute(COUNTS_SQL)
        max_connections, reserved, in_use = cursor.fetchone()
        return SessionListing(sessions, max_connections, reserved, in_use)
