"""Helpers of the routing tests: where did a read land, and wait for replication."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

REPO = Path(__file__).resolve().parent.parent.parent


def _connect(port: str, dbname: str = "postgres") -> psycopg.Connection:
    entry = settings.DATABASES["default"]
    return psycopg.connect(
        host=entry["HOST"],
        port=port,
        user=entry["USER"],
        password=entry["PASSWORD"] or None,
        dbname=dbname,
        autocommit=True,
        connect_timeout=3,
    )


def primary_port() -> str:
    return settings.DATABASES["default"]["PORT"]


def replica_port() -> str:
    return settings.REPLICA_PORT


def replica_error() -> str | None:
    """None if the replica answers and streams from the primary, else why not."""
    try:
        with _connect(replica_port()) as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver LIMIT 1)"
            ).fetchone()
    except Exception as error:
        return str(error).strip() or type(error).__name__
    if not row[0]:
        return "the server on the replica port is not in recovery"
    if row[1] != "streaming":
        return f"its WAL receiver is {row[1]!r}"
    return None


def wait_for_replica(timeout: float = 15.0) -> float:
    """Block until the replica has replayed everything the primary wrote so far; return
    the seconds it took."""
    started = time.monotonic()
    with _connect(primary_port()) as primary:
        lsn = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with _connect(replica_port()) as replica:
        while True:
            done = replica.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]
            ).fetchone()[0]
            if done:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"the replica did not replay {lsn} in {timeout} s")
            time.sleep(0.01)


def replica_sql(sql: str, params: Any = None) -> Any:
    with _connect(replica_port()) as replica:
        return replica.execute(sql, params).fetchone()


def where_read(model: Any) -> tuple[str, bool]:
    """Read through the router: (the alias it chose, whether the server that answered is
    a hot standby — ``pg_is_in_recovery()``)."""
    row = next(iter(model.objects.raw("SELECT 0 AS id, pg_is_in_recovery() AS in_recovery")))
    return row._state.db, row.in_recovery


def run_async(coroutine_function, *args: Any) -> Any:
    """Run an async test body; close the connections the ORM opened in asgiref's
    thread afterwards, or they would keep the test database busy."""

    async def main() -> Any:
        try:
            return await coroutine_function(*args)
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(main())


def replica_ctl(command: str) -> None:
    """Stop (``stop``) or start (``up``) the replica with bin/replica-up."""
    subprocess.run([str(REPO / "bin" / "replica-up"), command], check=True, capture_output=True)


def can_control_replica() -> bool:
    return os.geteuid() == 0 or os.environ.get("USER") == "postgres"
