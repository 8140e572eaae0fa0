"""Where the benchmark's databases are, and the servers' own counters of opened connections.

Connection parameters come from the same environment variables as the test settings
(POSTGRES_HOST/PORT/USER/PASSWORD, MYSQL_HOST/PORT/USER/PASSWORD). The benchmark uses
its own database, ``dataflow_bench`` (BENCH_DB_NAME to change it), created if missing:
on PostgreSQL that makes ``pg_stat_database.sessions`` count the benchmark's sessions
and nobody else's.

A ``ServerMonitor`` holds one raw driver connection, opened before any measurement and
never through Django, and answers two questions: how many connections has the server
opened so far (a cumulative counter), and is any client still connected to the
benchmark database (so that a run starts and ends with nothing left over).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BENCH_DB_NAME", "dataflow_bench")
SQLITE_PATH = REPO / ".cache" / "bench.sqlite3"


@dataclass(frozen=True)
class ServerParams:
    host: str
    port: int
    user: str
    password: str
    name: str


def server_params(vendor: str) -> ServerParams | None:
    if vendor == "postgresql":
        env, port, user = "POSTGRES", 5432, "postgres"
    elif vendor == "mysql":
        env, port, user = "MYSQL", 3306, "root"
    else:
        return None
    return ServerParams(
        host=os.environ.get(f"{env}_HOST", "127.0.0.1"),
        port=int(os.environ.get(f"{env}_PORT", port)),
        user=os.environ.get(f"{env}_USER", user),
        password=os.environ.get(f"{env}_PASSWORD", ""),
        name=BENCH_DB,
    )


class ServerMonitor:
    """The benchmark's own observer connection to one server (or a stand-in for SQLite)."""

    vendor: str
    has_counter = False
    # The parameters the contenders connect with, and what counts their connections.
    client: ServerParams | None = None
    counter = "none"

    def version(self) -> str:
        raise NotImplementedError

    def connections_opened(self) -> int | None:
        """The server's cumulative count of opened connections (None if it has none)."""
        return None

    def clients(self) -> int:
        """How many clients other than this monitor are connected to the bench database."""
        return 0

    def wait_until_no_clients(self, timeout: float = 15.0) -> int:
        """Wait for the bench database to have no clients; return how many are left."""
        deadline = time.monotonic() + timeout
        left = self.clients()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self.clients()
        return left

    def settled_connections_opened(self) -> int | None:
        """The counter once every client has gone and the server has published its stats."""
        return self.connections_opened()

    def other_clients(self) -> int:
        """Clients connected to the server but not to the bench database (noise for a
        server-wide counter)."""
        return 0

    def close(self) -> None:
        pass


class PostgresMonitor(ServerMonitor):
    """Reads ``pg_stat_database.sessions`` (PostgreSQL 14+) for the bench database.

    The monitor itself connects to the ``postgres`` maintenance database, so its own
    session is never counted. A backend publishes its session count when it is idle
    (at most once a second) or when it exits; every run therefore ends by closing all
    of its connections, waiting until the bench database has no backend left, and
    reading the counter until two reads a moment apart agree.
    """

    vendor = "postgresql"
    has_counter = True

    def __init__(self, params: ServerParams) -> None:
        import psycopg

        self.params = params
        self.conn = psycopg.connect(
            host=params.host,
            port=params.port,
            user=params.user,
            password=params.password,
            dbname="postgres",
            autocommit=True,
            application_name="dataflow-bench-monitor",
        )
        exists = self._one("SELECT 1 FROM pg_database WHERE datname = %s", [params.name])
        if not exists:
            self.conn.execute(f'CREATE DATABASE "{params.name}"')
        self.client = params
        self.counter = f"pg_stat_database.sessions of database {params.name}"
        if int(self._one("SHOW server_version_num")) < 140000:
            self.has_counter = False
            self.counter = "none (PostgreSQL < 14 has no pg_stat_database.sessions)"

    def _one(self, sql: str, args: list[Any] | None = None) -> Any:
        row = self.conn.execute(sql, args).fetchone()
        return row[0] if row else None

    def version(self) -> str:
        return f"PostgreSQL {self._one('SHOW server_version')}"

    def connections_opened(self) -> int | None:
        if not self.has_counter:
            return None
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        value = self._one(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", [self.params.name]
        )
        return int(value or 0)

    def clients(self) -> int:
        return int(
            self._one(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.params.name],
            )
        )

    def other_clients(self) -> int:
        return int(
            self._one(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid() AND datname IS DISTINCT FROM %s",
                [self.params.name],
            )
        )

    def settled_connections_opened(self) -> int | None:
        self.wait_until_no_clients()
        previous = self.connections_opened()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            time.sleep(0.15)
            current = self.connections_opened()
            if current == previous:
                return current
            previous = current
        return previous

    def close(self) -> None:
        if not self.conn.closed:
            self.conn.close()


class MySQLMonitor(ServerMonitor):
    """Counts the connections of a dedicated MariaDB/MySQL user.

    The ``Connections`` status counter is server-wide, so a test suite running against
    the same server would inflate it. Instead the benchmark connects as its own user,
    ``dataflow_bench`` (BENCH_MYSQL_USER), created if missing with rights on the bench
    database only, and reads that user's ``TOTAL_CONNECTIONS`` from
    ``information_schema.USER_STATISTICS`` (MariaDB's ``userstat``; switched on for the
    run and restored afterwards). The counter moves at connect time. Without the
    rights to do so (or on MySQL, which has no userstat) it falls back to the
    server-wide ``Connections`` and the benchmark's usual user, and says so.
    """

    vendor = "mysql"
    has_counter = True

    def __init__(self, params: ServerParams) -> None:
        import MySQLdb

        self.params = params
        self.conn = MySQLdb.connect(
            host=params.host, port=params.port, user=params.user, password=params.password
        )
        self.conn.autocommit(True)
        self._one(f"CREATE DATABASE IF NOT EXISTS `{params.name}`")
        self.client = params
        self.counter = "server-wide Connections status counter"
        self._userstat_before: Any = None
        bench_user = os.environ.get("BENCH_MYSQL_USER", "dataflow_bench")
        try:
            self._one(f"CREATE USER IF NOT EXISTS '{bench_user}'@'%'")
            self._one(f"GRANT ALL PRIVILEGES ON `{params.name}`.* TO '{bench_user}'@'%'")
            self._userstat_before = self._one("SELECT @@GLOBAL.userstat")
            self._one("SET GLOBAL userstat = 1")
        except MySQLdb.Error:
            return
        self.client = ServerParams(
            host=params.host, port=params.port, user=bench_user, password="", name=params.name
        )
        self.counter = f"TOTAL_CONNECTIONS of user {bench_user} (USER_STATISTICS)"

    def _one(self, sql: str, args: list[Any] | None = None) -> Any:
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, args)
            row = cursor.fetchone()
        finally:
            cursor.close()
        return row[-1] if row else None

    @property
    def per_user(self) -> bool:
        return self.client is not self.params

    def version(self) -> str:
        return str(self._one("SELECT VERSION()"))

    def connections_opened(self) -> int | None:
        if self.per_user:
            value = self._one(
                "SELECT TOTAL_CONNECTIONS FROM information_schema.USER_STATISTICS WHERE USER = %s",
                [self.client.user],
            )
            return int(value or 0)
        return int(self._one("SHOW GLOBAL STATUS LIKE 'Connections'"))

    def clients(self) -> int:
        return int(
            self._one(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE DB = %s AND ID <> CONNECTION_ID()",
                [self.params.name],
            )
        )

    def other_clients(self) -> int:
        if self.per_user:
            return 0  # others cannot move a per-user counter
        return int(
            self._one(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Daemon' "
                "AND USER <> 'system user' AND (DB IS NULL OR DB <> %s)",
                [self.params.name],
            )
        )

    def settled_connections_opened(self) -> int | None:
        self.wait_until_no_clients()
        return self.connections_opened()

    def close(self) -> None:
        """Put ``userstat`` back as it was; safe to call twice (it also runs at exit)."""
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        try:
            if self._userstat_before is not None:
                cursor = conn.cursor()
                cursor.execute(f"SET GLOBAL userstat = {int(self._userstat_before)}")
                cursor.close()
        finally:
            conn.close()


class SQLiteMonitor(ServerMonitor):
    """SQLite has no server: nothing to count, only a file to create."""

    vendor = "sqlite"

    def __init__(self) -> None:
        SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(SQLITE_PATH).close()

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"


def open_monitor(vendor: str) -> ServerMonitor:
    if vendor == "sqlite":
        return SQLiteMonitor()
    params = server_params(vendor)
    assert params is not None
    if vendor == "postgresql":
        return PostgresMonitor(params)
    return MySQLMonitor(params)
