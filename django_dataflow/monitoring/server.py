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
settings), which is left out of the groups. A ``ServerView`` prints itself as the
``--server`` table (``table()``) and JSON (``to_json()``); PgBouncer's admin console has
a view of its own with the same two methods (``pgbouncer``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import Error

from django_dataflow import conf
from django_dataflow.backends.server import ServerSession, vendor_queries, wrapper_queries
from django_dataflow.monitoring import text
from django_dataflow.monitoring.aggregate import Report
from django_dataflow.settings.engines import BY_VENDOR

IDENTITY = re.compile(r"^(?P<prefix>.*):(?P<alias>[^:]*):(?P<pid>\d+)$")
CONNECT_TIMEOUT = 5


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

    def describe_states(self) -> str:
        """``"2 active (longest 250ms), 1 idle"``: each state, its count, its longest."""
        return ", ".join(
            f"{count} {state}"
            + (f" (longest {text.seconds(self.longest[state])})" if state in self.longest else "")
            for state, count in sorted(self.states.items())
        )


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

    def table(self) -> str:
        """The ``--server`` table: one row per application and client process."""
        header = (
            f"Server sessions on {self.vendor} database {self.database!r} "
            f"(alias {self.alias!r}): max_connections {self.max_connections}"
            + (f", {self.reserved} reserved for superusers" if self.reserved else "")
            + f", {self.in_use} in use on the server, headroom {self.headroom}"
        )
        if not self.groups:
            body = "No other sessions on this database."
        else:
            rows = [
                [
                    group.application or "(none)",
                    group.alias or "-",
                    group.pid or "-",
                    group.client,
                    group.sessions,
                    group.describe_states(),
                ]
                for group in self.groups
            ]
            headers = ("APPLICATION", "ALIAS", "PID", "CLIENT", "SESSIONS", "STATES")
            body = text.table(headers, rows, align="llrlrl")
        notes = "".join(f"\nNote: {note}." for note in self.notes)
        return f"{header}\n\n{body}{notes}"

    def to_json(self) -> dict[str, Any]:
        """The ``--server`` part of ``pool_stats --format json`` for this server."""
        return {
            "vendor": self.vendor,
            "database": self.database,
            "max_connections": self.max_connections,
            "reserved_connections": self.reserved,
            "in_use": self.in_use,
            "headroom": self.headroom,
            "notes": self.notes,
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
                for group in self.groups
            ],
        }


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
    engine = BY_VENDOR.get(pooled.vendor)
    if engine is None or not vendor_queries(pooled.vendor).has_server:
        raise ServerUnavailable(f"{pooled.vendor} has no server-side view of connections.")
    settings_dict = {**pooled.settings_dict, "ENGINE": engine.stock_path}
    options = dict(settings_dict.get("OPTIONS") or {})
    options.setdefault("connect_timeout", CONNECT_TIMEOUT)
    settings_dict["OPTIONS"] = options
    return load_backend(engine.stock_path).DatabaseWrapper(settings_dict, alias)


def server_view(alias: str, report: Report) -> ServerView:
    """Query the database server of ``alias``. Raises ServerUnavailable."""
    wrapper = stock_wrapper(alias)
    database = str(wrapper.settings_dict["NAME"])
    try:
        with wrapper.cursor() as cursor:
            listing = wrapper_queries(wrapper).sessions(cursor, database)
    except Error as error:
        raise ServerUnavailable(
            f"Could not query the {wrapper.vendor} server of {alias!r}: {error}".strip()
        ) from error
    finally:
        wrapper.close()
    return ServerView(
        alias,
        wrapper.vendor,
        database,
        listing.max_connections,
        listing.reserved,
        listing.in_use,
        _grouped(listing.sessions, report),
        listing.notes,
    )


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


def _grouped(sessions: list[ServerSession], report: Report) -> list[SessionGroup]:
    """The sessions grouped by application and client process; pooled ones by their
    alias and process too."""
    published = _published_sessions(report)
    prefix = conf.application_name_prefix()
    groups: dict[tuple, SessionGroup] = {}
    for session in sessions:
        owner = published.get(session.id)
        client = session.client
        if owner is not None:
            # The name the session gave itself; where it cannot give one, the name a
            # hook set, else the one it would have had.
            application = session.application
            if application is None:
                application = owner[2] or f"{prefix or 'django-dataflow'}:{owner[0]}:{owner[1]}"
            group = _group(groups, application, owner[0], owner[1], client)
        elif (identified := _ours(prefix, session.application or "")) is not None:
            # Identified: the application is a name, not None.
            application = cast(str, session.application)
            group = _group(groups, application, identified[0], identified[1], client)
        elif session.client_pid is not None:
            application = session.program or session.label
            group = _group(groups, application, None, session.client_pid, client)
        else:
            group = _group(groups, session.label, None, None, client)
        group.add(session.state, session.seconds)
    return _sorted(groups)


def _sorted(groups: dict[tuple, SessionGroup]) -> list[SessionGroup]:
    return sorted(
        groups.values(),
        key=lambda g: (g.alias is None, g.alias or "", g.application, g.pid or 0, g.client),
    )
