"""Helpers of the backend tests: vendor-specific SQL (who am I on the server, kill a
session, count sessions), wrappers with pools of their own, one request's work, and a
thread that runs the calls handed to it."""

from __future__ import annotations

import gc
import os
import threading
from typing import Any

from django.db import connection as default_connection
from django.db import connections

from django_dataflow.pool import registry

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


def sessions_on(vendor: str, database: str) -> int:
    """How many server sessions are on ``database``."""
    with admin_cursor(vendor) as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database])
        else:
            cursor.execute(
                "SELECT count(*) FROM information_schema.processlist WHERE db = %s", [database]
            )
        return cursor.fetchone()[0]


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


def request(wrapper, sql: str = "SELECT 1"):
    """One request's database work, framed as Django's request signals frame it."""
    wrapper.close_if_unusable_or_obsolete()  # request_started
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()
    finally:
        wrapper.close_if_unusable_or_obsolete()  # request_finished


def at_rest(pool) -> dict:
    stats = pool.get_stats()
    return {
        "checked_out": stats["checked_out"],
        "balanced": stats["checkouts"] == stats["checkins"],
        "wait_queue": stats["wait_queue"],
    }


AT_REST = {"checked_out": 0, "balanced": True, "wait_queue": 0}


class Stepper(threading.Thread):
    """A thread that runs callables handed to it, one at a time, and waits for more."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._jobs: list = []
        self._cv = threading.Condition()
        self._stop_flag = False
        self.start()

    def run(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._stop_flag:
                    self._cv.wait()
                if not self._jobs:
                    return
                job, box, done = self._jobs.pop(0)
            try:
                box["result"] = job()
            except BaseException as error:
                box["error"] = error
            done.set()

    def call(self, job, timeout: float = 20):
        box: dict = {}
        done = threading.Event()
        with self._cv:
            self._jobs.append((job, box, done))
            self._cv.notify()
        assert done.wait(timeout), "the thread did not finish its job"
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def stop(self) -> None:
        with self._cv:
            self._stop_flag = True
            self._cv.notify()
        self.join(10)


def pid_reported_by_a_forked_child(child_work, finalize=None) -> str:
    """Fork. The child runs ``child_work``, which returns the backend pid of its own
    session, closes its pools, runs ``finalize``, collects garbage (finalizing the
    connection objects it inherited, as interpreter exit would) and reports the pid. The
    parent returns what was reported, once the child has exited successfully."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 1
        try:
            child_pid = child_work()
            connections.close_all()
            registry.close_pools()
            if finalize is not None:
                finalize()
            gc.collect()
            os.write(write_end, str(child_pid).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    reported = os.read(read_end, 100).decode()
    os.close(read_end)
    _, status = os.waitpid(child, 0)
    assert status == 0 and reported
    return reported


def current_database(wrapper) -> str:
    """The database the connection behind ``wrapper`` is on (SQLite: the main file)."""
    sql = {
        "postgresql": "SELECT current_database()",
        "mysql": "SELECT DATABASE()",
        "sqlite": "SELECT file FROM pragma_database_list WHERE name = 'main'",
    }[wrapper.vendor]
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


class extra_database:
    """A second database on the server of the run (SQLite: a file under ``directory``),
    made for a test and dropped after it: ``with extra_database(vendor, name, tmp) as
    entry_name``. Dropping fails (PostgreSQL) while a session is still on it."""

    def __init__(self, vendor: str, name: str, directory: Any = None) -> None:
        self.vendor = vendor
        self.name = name if vendor != "sqlite" else str(directory / f"{name}.sqlite3")

    def __enter__(self) -> str:
        if self.vendor != "sqlite":
            with admin_cursor(self.vendor) as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {self.name}")
                cursor.execute(f"CREATE DATABASE {self.name}")
        return self.name

    def drop(self) -> None:
        if self.vendor != "sqlite":
            with admin_cursor(self.vendor) as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {self.name}")

    def __exit__(self, *exc_info) -> None:
        try:
            self.drop()
        except Exception:
            if exc_info[0] is None:
                raise
