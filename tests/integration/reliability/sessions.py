"""The server's side of the scenarios: list, kill and count sessions on a dedicated
server, from an admin connection of its own (never through a pool under test)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any


def _admin(server: Any) -> Any:
    return server.connect()


def kill(server: Any, sessions: Iterable[int]) -> None:
    """End these server sessions, as a DBA (or a failover) would."""
    connection = _admin(server)
    try:
        cursor = connection.cursor()
        for session in sessions:
            if server.name == "postgresql":
                cursor.execute("SELECT pg_terminate_backend(%s)", [session])
            else:
                cursor.execute(f"KILL {int(session)}")
    finally:
        connection.close()


def alive(server: Any, sessions: Iterable[int]) -> set[int]:
    """Which of ``sessions`` the server still has."""
    sessions = [int(session) for session in sessions]
    if not sessions:
        return set()
    connection = _admin(server)
    try:
        cursor = connection.cursor()
        if server.name == "postgresql":
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [sessions])
        else:
            marks = ", ".join(["%s"] * len(sessions))
            cursor.execute(
                f"SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN ({marks})",
                sessions,
            )
        return {int(row[0]) for row in cursor.fetchall()}
    finally:
        connection.close()


def kill_and_wait(server: Any, sessions: Iterable[int], timeout: float = 10.0) -> None:
    sessions = set(sessions)
    kill(server, sessions)
    deadline = time.monotonic() + timeout
    while remaining := alive(server, sessions):
        assert time.monotonic() < deadline, f"sessions {remaining} survived being killed"
        time.sleep(0.02)


def sessions_on(server: Any, database: str, application: str | None = None) -> set[int]:
    """The server's sessions connected to ``database`` (PostgreSQL: only those whose
    application_name starts with ``application``, if given)."""
    connection = _admin(server)
    try:
        cursor = connection.cursor()
        if server.name == "postgresql":
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s "
                "AND backend_type = 'client backend' AND application_name LIKE %s",
                [database, f"{application or ''}%"],
            )
        else:
            cursor.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s", [database]
            )
        return {int(row[0]) for row in cursor.fetchall()}
    finally:
        connection.close()
