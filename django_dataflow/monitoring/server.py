"""``pool_stats --server``: the database's own view of the sessions, next to the pools'.

PostgreSQL reports ``pg_stat_activity``, MySQL/MariaDB their processlist. Sessions are
grouped by application and client process, with their states (active, idle, idle in
transaction) and the longest time spent in each, plus ``max_connections`` and the
headroom left.

A pooled session is recognised, in this order, by:

1. its server session id, published by the process that opened it (works on every
   server, including MariaDB, where clients cannot label their sessions);
2. its PostgreSQL ``application_name`` ``"<prefix>:<alias>:<pid>"`` (see
   ``django_dataflow.backends.postgresql.server``), which also covers processes on other hosts;
3. MySQL's ``_pid`` connection attribute, where performance_schema is on.

The query runs on a separate, unpooled connection (Django's stock backend with the same
settings), which is left out of the groups.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django_dataflow import conf
from django_dataflow.monitoring.aggregate import Report

STOCK_ENGINES = {"postgresql": "django.db.backends.postgresql", "mysql": "django.db.backends.mysql"}
IDENTITY = re.compile(r"^(?P<prefix>.*):(?P<alias>[^:]*):(?P<pid>\d+)$")
CONNECT_TIMEOUT = 5

PG_SESSIONS = """
    SELECT pid, usename, application_name, COALESCE(host(client_addr), 'local'), state,
           EXTRACT(EPOCH FROM (clock_timestamp() - state_change))::float
    FROM pg_stat_activity
    WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()
"""
PG_SERVER = """
    SELECT current_setting('max_connections')::int,
           current_setting('superuser_reserved_connections')::int,
           (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
"""
MYSQL_SESSIONS = """
    SELECT ID, USER, HOST, COMMAND, TIME FROM information_schema.PROCESSLIST
    WHERE DB = %s AND ID <> CONNECTION_ID()
"""
MYSQL_TRANSACTIONS = "SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX"
MYSQL_ATTRIBUTES = """
    SELECT PROCESSLIST_ID, ATTR_NAME, ATTR_VALUE FROM performance_schema.session_connect_attrs
    WHERE ATTR_NAME IN ('_pid', 'program_name')
"""


class ServerUnavailable(Exception):
    """The server could not be reached or queried; the message says why (no secrets)."""


@dataclass
class SessionGroup:
    application: str
    alias: str | None
    pid: int | None
    client: str
    states: Counter[str] = field(default_factory=Counter)
    longest: dict[str, float] = field(default_factory=dict)

    @property
    def sessions(self) -> int:
        return sum(self.states.values())

    def add(self, state: str, seconds: float | None) -> None:
        self.states[state] += 1
        if seconds is not None:
            self.longest[state] = max(self.longest.get(state, 0.0), float(seconds))


@dataclass
class ServerView:
    alias: str
    vendor: str
    database: str
    max_connections: int
    reserved: int
    in_use: int  # every client session on the server, all databases
    groups: list[SessionGroup]
    notes: list[str] = field(default_factory=list)

    @property
    def headroom(self) -> int:
        return self.max_connections - self.reserved - self.in_use


def _published_sessions(report: Report) -> dict[Any, tuple[str, int, str | None]]:
    """server session id -> (alias, pid, application name set by a hook)."""
    known = {}
    for alias in report.aliases.values():
        for process in alias.processes:
            for session, _out, application in process.sessions:
                known[session] = (alias.alias, process.pid, application)
    return known


def stock_wrapper(alias: str) -> Any:
    """An unpooled Django connection with ``alias``'s settings."""
    from django.db import connections
    from django.db.utils import load_backend

    pooled = connections[alias]
    engine = STOCK_ENGINES.get(pooled.vendor)
    if engine is None:
        raise ServerUnavailable(f"{pooled.vendor} has no server-side view of connections.")
    settings_dict = {**pooled.settings_dict, "ENGINE": engine}
    options = dict(settings_dict.get("OPTIONS") or {})
    options.setdefault("connect_timeout", CONNECT_TIMEOUT)
    settings_dict["OPTIONS"] = options
    return load_backend(engine).DatabaseWrapper(settings_dict, alias)


def server_view(alias: str, report: Report) -> Any:
    """Query the server of ``alias`` (a ServerView; a PgBouncerView when ``alias`` leads
    to PgBouncer's admin console). Raises ServerUnavailable."""
    from django.db import Error, connections

    from django_dataflow.monitoring import pgbouncer

    if pgbouncer.is_admin_console(connections[alias].settings_dict):
        return pgbouncer.console_view(alias)
    wrapper = stock_wrapper(alias)
    database = str(wrapper.settings_dict["NAME"])
    try:
        with wrapper.cursor() as cursor:
            if wrapper.vendor == "postgresql":
                return _postgresql(alias, database, cursor, report)
            return _mysql(alias, database, cursor, report)
    except Error as error:
        raise ServerUnavailable(
            f"Could not query the {wrapper.vendor} server of {alias!r}: {error}".strip()
        ) from error
    finally:
        wrapper.close()


def _group(groups: dict[tuple, SessionGroup], application: str, alias, pid, client) -> SessionGroup:
    key = (application, alias, pid, client)
    if key not in groups:
        groups[key] = SessionGroup(application, alias, pid, client)
    return groups[key]


def _ours(prefix: str | None, application: str) -> tuple[str, int] | None:
    match = IDENTITY.match(application or "")
    # The prefix may have been shortened to fit PostgreSQL's 63 bytes.
    if match and match["prefix"] and prefix is not None and prefix.startswith(match["prefix"]):
        return match["alias"], int(match["pid"])
    return None


def _postgresql(alias: str, database: str, cursor: Any, report: Report) -> ServerView:
    published = _published_sessions(report)
    prefix = conf.application_name_prefix()
    cursor.execute(PG_SESSIONS, [database])
    groups: dict[tuple, SessionGroup] = {}
    for session, user, application, client, state, seconds in cursor.fetchall():
        owner = published.get(session)
        if owner is not None:
            group = _group(groups, application or "", owner[0], owner[1], client)
        elif (identified := _ours(prefix, application)) is not None:
            group = _group(groups, application, identified[0], identified[1], client)
        else:
            group = _group(groups, application or f"({user})", None, None, client)
        group.add(state or "unknown (no privilege)", seconds)
    cursor.execute(PG_SERVER)
    max_connections, reserved, in_use = cursor.fetchone()
    return ServerView(
        alias, "postgresql", database, max_connections, reserved, in_use, _sorted(groups)
    )


def _mysql(alias: str, database: str, cursor: Any, report: Report) -> ServerView:
    published = _published_sessions(report)
    prefix = conf.application_name_prefix() or "django-dataflow"
    notes = []
    in_transaction: set[int] = set()
    try:
        cursor.execute(MYSQL_TRANSACTIONS)
        in_transaction = {row[0] for row in cursor.fetchall()}
    except Exception:
        notes.append("idle in transaction is not told apart (needs the PROCESS privilege)")
    attributes: dict[int, dict[str, str]] = {}
    try:
        cursor.execute(MYSQL_ATTRIBUTES)
        for session, name, value in cursor.fetchall():
            attributes.setdefault(session, {})[name] = value
    except Exception:
        pass  # performance_schema off (MariaDB's default): published ids only
    cursor.execute(MYSQL_SESSIONS, [database])
    groups: dict[tuple, SessionGroup] = {}
    for session, user, host, command, seconds in cursor.fetchall():
        client = (host or "").rsplit(":", 1)[0] or "local"
        if command == "Sleep":
            state = "idle in transaction" if session in in_transaction else "idle"
        elif command in ("Query", "Execute", "Fetch", "Prepare", "Long Data"):
            state = "active"
        else:
            state = str(command).lower()
        owner = published.get(session)
        attrs = attributes.get(session, {})
        if owner is not None:
            application = owner[2] or f"{prefix}:{owner[0]}:{owner[1]}"
            group = _group(groups, application, owner[0], owner[1], client)
        elif "_pid" in attrs and attrs["_pid"].isdigit():
            application = attrs.get("program_name") or f"{user}@{client}"
            group = _group(groups, application, None, int(attrs["_pid"]), client)
        else:
            group = _group(groups, f"{user}@{client}", None, None, client)
        group.add(state, seconds)
    cursor.execute("SELECT @@max_connections")
    max_connections = int(cursor.fetchone()[0])
    cursor.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
    in_use = int(cursor.fetchone()[1])
    return ServerView(alias, "mysql", database, max_connections, 0, in_use, _sorted(groups), notes)


def _sorted(groups: dict[tuple, SessionGroup]) -> list[SessionGroup]:
    return sorted(
        groups.values(),
        key=lambda g: (g.alias is None, g.alias or "", g.application, g.pid or 0, g.client),
    )


def view_to_json(view: Any) -> dict[str, Any]:
    if view.vendor == "pgbouncer":
        from django_dataflow.monitoring.pgbouncer import console_json

        return console_json(view)
    return {
        "vendor": view.vendor,
        "database": view.database,
        "max_connections": view.max_connections,
        "reserved_connections": view.reserved,
        "in_use": view.in_use,
        "headroom": view.headroom,
        "notes": view.notes,
        "groups": [
            {
                "application": group.application,
                "alias": group.alias,
                "pid": group.pid,
                "client": group.client,
                "sessions": group.sessions,
                "states": dict(group.states),
                "longest_seconds": {k: round(v, 3) for k, v in group.longest.items()},
            }
            for group in view.groups
        ],
    }
