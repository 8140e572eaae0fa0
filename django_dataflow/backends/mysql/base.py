"""DatabaseWrapper for the pooled MySQL / MariaDB backend.

Everything is Django's MySQL backend except connection opening and closing, which go
through the pool (see ``django_dataflow.backends.base``).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.mysql import base as django_mysql
from django.db.backends.mysql.creation import DatabaseCreation as DjangoCreation
from MySQLdb.cursors import CursorUseResultMixIn

from django_dataflow.backends.base import PooledDatabaseWrapperMixin
from django_dataflow.backends.creation import PooledCreationMixin
from django_dataflow.backends.mysql.connector import MySQLConnector
from django_dataflow.backends.mysql.server import MySQLServer


class DatabaseCreation(PooledCreationMixin, DjangoCreation):
    pass


class DatabaseWrapper(PooledDatabaseWrapperMixin, django_mysql.DatabaseWrapper):
    connector_class = MySQLConnector
    dataflow_server = MySQLServer()
    creation_class = DatabaseCreation

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = super().create_cursor(name)
        if isinstance(cursor.cursor, CursorUseResultMixIn):
            # An unbuffered cursor (OPTIONS["cursorclass"] = SSCursor) streams its rows:
            # rows left unread are still on the connection, and the next borrower's
            # first query would fail with "Commands out of sync" (the server status
            # flags the pool reads come from the previous reply and cannot tell). It is
            # closed, which reads and drops them, before the connection goes back (see
            # _dataflow_close_open_cursors).
            self._dataflow_track_cursor(cursor)
        return cursor
