"""Vendor-specific SQL the backend tests need: who am I on the server, kill a session,
count sessions. Each runs on a real server."""

from __future__ import annotations

from typing import Any

from django.db import connection as default_connection
from django.db import connections

# SQLite connections seen by backend_pid(), kept alive so that their ids stay unique (a
# closed connection's id may otherwise be reused by the next one).
_sqlite_connections_seen: list[Any] = []


def backend_pid(wrapper: Any = None) -> Any:
    """The server's identifier of the session behind ``wrapper`` (SQLite: the DB-API
    connection object's id, the nearest thing it has)."""
    wrapper = wrapper or default_connection
    vendor = wrapper.vendor
    if vendor == "sqlite":
        wrapper.ensure_connection()
        _sqlite_connections_seen.append(wrapper.connection)
        return id(wrapper.connection)
    sql = "SELECT pg_backend_pid()" if vendor == "postgresql" else "SELECT CONNECTION_ID()"
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def kill_session(pid: Any, vendor: str) -> None:
    """End a server session from a separate, unpooled connection."""
    with admin_cursor(vendor) as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        else:
            cursor.execute(f"KILL {int(pid)}")


def session_alive(pid: Any, vendor: str) -> bool:
    with admin_cursor(vendor) as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        else:
            cursor.execute(
                "SELECT count(*) FROM information_schema.processlist WHERE id = %s", [pid]
            )
        return cursor.fetchone()[0] == 1


class admin_cursor:
    """A cursor on a fresh stock (unpooled) connection to the same server."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    def __enter__(self):
        settings_dict = dict(connections["default"].settings_dict)
        if self.vendor == "postgresql":
            import psycopg

            self.raw = psycopg.connect(
                host=settings_dict["HOST"],
                port=settings_dict["PORT"],
                user=settings_dict["USER"],
                password=settings_dict["PASSWORD"] or None,
                dbname="postgres",
                autocommit=True,
            )
        else:
            import MySQLdb

            self.raw = MySQLdb.connect(
                host=settings_dict["HOST"],
                port=int(settings_dict["PORT"]),
                user=settings_dict["USER"],
                password=settings_dict["PASSWORD"],
            )
            self.raw.autocommit(True)
        self.cursor = self.raw.cursor()
        return self.cursor

    def __exit__(self, *exc_info):
        self.cursor.close()
        self.raw.close()


def make_wrapper(alias: str = "default", **pool_options: Any) -> Any:
    """A new DatabaseWrapper for ``alias`` (same database) with these POOL options.

    Different options mean a different pool, so a test gets a pool of its own.
    """
    base = connections[alias]
    settings_dict = {
        **base.settings_dict,
        "POOL": {**base.settings_dict.get("POOL", {}), **pool_options},
    }
    return base.__class__(settings_dict, alias)
