"""What the pool needs to know about sqlite3 connections.

SQLite connections never "disconnect"; the pool mostly saves the cost of opening the
file and running Django's per-connection setup (functions, PRAGMAs).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from django_dataflow.backends.connector import DjangoConnector


class SQLiteConnector(DjangoConnector):
    @staticmethod
    def driver_autocommit(connection: Any) -> bool:
        return connection.isolation_level is None

    def is_closed(self, connection: Any) -> bool:
        try:
            connection.in_transaction  # noqa: B018  raises once closed
        except sqlite3.ProgrammingError:
            return True
        return False

    def ping(self, connection: Any) -> bool:
        try:
            connection.execute("SELECT 1")
        except sqlite3.ProgrammingError:  # closed
            return False
        return True

    def reset(self, connection: Any) -> bool:
        if connection.in_transaction:
            connection.rollback()
        return True

    def is_clean(self, connection: Any) -> bool:
        # Autocommit on too (isolation_level None), as on MySQL and PostgreSQL: a raw
        # isolation_level change would make the next request's writes implicit
        # transactions that its return rolls back.
        try:
            return connection.isolation_level is None and not connection.in_transaction
        except sqlite3.ProgrammingError:  # closed
            return False

    def forget_after_fork(self, connection: Any) -> None:
        # Not a socket: nothing to redirect. The registry keeps the object alive, so
        # the child never closes the parent's file handle.
        pass
