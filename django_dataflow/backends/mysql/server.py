"""What the package asks MySQL/MariaDB servers (see ``backends/server.py``).

Pooled connections cannot label themselves here: MySQL/MariaDB keep client-sent
connection attributes only in performance_schema, which MariaDB turns off by default,
and mysqlclient cannot send custom ones anyway. Each process publishes the server ids
of its pooled sessions instead (``session_id``), which the session listing is matched
against.
"""

from __future__ import annotations

from typing import Any

import MySQLdb

from django_dataflow.backends.server import ServerQueries, ServerSession, SessionListing

# The lag column of SHOW REPLICA STATUS, by its newer name first.
LAG_COLUMNS = ("Seconds_Behind_Source", "Seconds_Behind_Master")
SESSIONS_SQL = """
    SELECT ID, USER, HOST, COMMAND, TIME FROM information_schema.PROCESSLIST
    WHERE DB = %s AND ID <> CONNECTION_ID()
"""
TRANSACTIONS_SQL = "SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX"
ATTRIBUTES_SQL = """
    SELECT PROCESSLIST_ID, ATTR_NAME, ATTR_VALUE FROM performance_schema.session_connect_attrs
    WHERE ATTR_NAME IN ('_pid', 'program_name')
"""
# Processlist commands of a session running a statement.
ACTIVE_COMMANDS = frozenset({"Query", "Execute", "Fetch", "Prepare", "Long Data"})


class MySQLServer(ServerQueries):
    has_server = True
    closes_idle_sessions = True  # wait_timeout

    def session_id(self, dbapi_connection: Any) -> Any:
        return dbapi_connection.thread_id()  # known to the client since the handshake

    def replication_lag(self, dbapi_connection: Any) -> float | None:
        cursor = dbapi_connection.cursor()
        try:
            try:
                cursor.execute("SHOW REPLICA STATUS")  # MySQL 8.0.22+, MariaDB 10.5.1+
            except MySQLdb.ProgrammingError:
                cursor.execute("SHOW SLAVE STATUS")
            rows = cursor.fetchall()
            names = [column[0] for column in cursor.description or ()]
        finally:
            cursor.close()
        if not rows:
            return 0.0  # not a replica
        column = next((names.index(name) for name in LAG_COLUMNS if name in names), None)
        if column is None:
            return None
        values = [row[column] for row in rows]
        if any(value is None for value in values):
            return None  # a replication thread is stopped: unknown lag
        return float(max(values))

    def connection_limit(self, cursor: Any) -> tuple[int, str] | None:
        cursor.execute("SELECT @@GLOBAL.max_connections")
        rows = cursor.fetchall()
        if not rows:
            return None
        return int(rows[0][0]), f"max_connections {int(rows[0][0])}"

    def idle_session_timeout(self, cursor: Any) -> int | None:
        cursor.execute("SELECT @@SESSION.wait_timeout")
        rows = cursor.fetchall()
        return int(rows[0][0]) if rows else None

    def sessions(self, cursor: Any, database: str) -> SessionListing:
        notes = []
        in_transaction: set[int] = set()
        try:
            cursor.execute(TRANSACTIONS_SQL)
            in_transaction = {row[0] for row in cursor.fetchall()}
        except Exception:
            notes.append("idle in transaction is not told apart (needs the PROCESS privilege)")
        attributes: dict[int, dict[str, str]] = {}
        try:
            cursor.execute(ATTRIBUTES_SQL)
            for session, name, value in cursor.fetchall():
                attributes.setdefault(session, {})[name] = value
        except Exception:
            pass  # performance_schema off (MariaDB's default): published ids only
        cursor.execute(SESSIONS_SQL, [database])
        sessions = []
        for session, user, host, command, seconds in cursor.fetchall():
            client = (host or "").rsplit(":", 1)[0] or "local"
            if command == "Sleep":
                state = "idle in transaction" if session in in_transaction else "idle"
            elif command in ACTIVE_COMMANDS:
                state = "active"
            else:
                state = str(command).lower()
            attrs = attributes.get(session, {})
            pid = attrs.get("_pid", "")
            sessions.append(
                ServerSession(
                    id=session,
                    client=client,
                    state=state,
                    seconds=seconds,
                    label=f"{user}@{client}",
                    client_pid=int(pid) if pid.isdigit() else None,
                    program=attrs.get("program_name"),
                )
            )
        cursor.execute("SELECT @@max_connections")
        max_connections = int(cursor.fetchone()[0])
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
        in_use = int(cursor.fetchone()[1])
        return SessionListing(sessions, max_connections, 0, in_use, notes)
