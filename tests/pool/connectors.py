"""Connectors over real sqlite3 file connections that a test can slow down, break or make
hang: the pool-engine tests' stand-ins for a database driver."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path


class SQLiteFileConnector:
    """Opens real sqlite3 connections to one file; counts what the pool asks of it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened = 0
        self.closed = 0
        self.pings = 0
        self.fail_next_connect: Exception | None = None
        self.fail_always: Exception | None = None  # every connect fails with it
        # Connections whose server "died": still open locally, but their ping fails.
        self.dead: set[int] = set()
        self.connect_gate: threading.Event | None = None  # connect waits on it if set
        self.connect_seconds = 0.0  # how long a connect takes
        self.connecting = 0  # connects running now, and the most seen at once
        self.most_connecting = 0
        self.connecting_at_start: list[int] = []  # per connect, in order: how many ran
        # Per connect, the thread that ran it (the object: an ident can be reused).
        self.connecting_threads: list[threading.Thread] = []

        self.lock = threading.Lock()

    def connect(self):
        with self.lock:
            self.opened += 1
            self.connecting += 1
            self.most_connecting = max(self.most_connecting, self.connecting)
            self.connecting_at_start.append(self.connecting)
            self.connecting_threads.append(threading.current_thread())
            error, self.fail_next_connect = self.fail_next_connect, None
            error = error or self.fail_always
        try:
            if self.connect_gate is not None:
                self.connect_gate.wait()
            if self.connect_seconds:
                time.sleep(self.connect_seconds)
            if error is not None:
                raise error
            return sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        finally:
            with self.lock:
                self.connecting -= 1

    def ping(self, connection) -> bool:
        self.pings += 1
        if id(connection) in self.dead:
            return False
        try:
            connection.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            return False
        return True

    def has_pending_input(self, connection) -> bool:
        # A "dead" connection's server said goodbye: its socket would be readable.
        return id(connection) in self.dead

    def is_closed(self, connection) -> bool:
        try:
            connection.in_transaction  # noqa: B018  raises once closed
        except sqlite3.ProgrammingError:
            return True
        return False

    def reset(self, connection) -> bool:
        if connection.in_transaction:
            connection.rollback()
        return True

    def is_clean(self, connection) -> bool:
        try:
            return not connection.in_transaction
        except sqlite3.ProgrammingError:
            return False

    def close(self, connection) -> None:
        with self.lock:
            self.closed += 1
        connection.close()

    def forget_after_fork(self, connection) -> None:
        pass


class GatedResetConnector(SQLiteFileConnector):
    """reset() in the threads listed in ``gated`` waits for ``gate``: a slow ROLLBACK,
    to hold a checkin between its start and its end."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.gated: set[threading.Thread] = set()
        self.in_reset = threading.Event()

    def reset(self, connection) -> bool:
        if threading.current_thread() in self.gated:
            self.in_reset.set()
            assert self.gate.wait(10), "the gate never opened"
        return super().reset(connection)


class SessionLimitedConnector(SQLiteFileConnector):
    """A server that allows ``limit`` sessions at once (a role's CONNECTION LIMIT, the
    server's max_connections): a connect beyond it fails at once."""

    def __init__(self, path, limit: int) -> None:
        super().__init__(path)
        self.limit = limit
        self.sessions = 0
        self.refused = 0

    def connect(self):
        with self.lock:
            if self.sessions >= self.limit:
                self.refused += 1
                raise sqlite3.OperationalError("too many connections for role")
            self.sessions += 1
        try:
            return super().connect()
        except BaseException:
            with self.lock:
                self.sessions -= 1
            raise

    def close(self, connection) -> None:
        super().close(connection)
        with self.lock:
            self.sessions -= 1
