"""DatabaseWrapper for the pooled MySQL / MariaDB backend.

Everything is Django's MySQL backend except connection opening and closing, which go
through the pool (see ``django_dataflow.backends.base``).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.mysql import base as django_mysql
from django.db.backends.mysql.creation import DatabaseCreation as DjangoCreation
from django.utils.functional import cached_property
from MySQLdb.cursors import CursorUseResultMixIn

from django_dataflow.backends.base import PooledDatabaseWrapperMixin
from django_dataflow.backends.creation import PooledCreationMixin
from django_dataflow.backends.mysql.connector import MySQLConnector
from django_dataflow.backends.mysql.server import MySQLServer
from django_dataflow.backends.mysql.validation import (
    UNKNOWN_SERVER,
    DatabaseValidation,
    pool_is_wrong,
)


class DatabaseCreation(PooledCreationMixin, DjangoCreation):
    pass


class DatabaseWrapper(PooledDatabaseWrapperMixin, django_mysql.DatabaseWrapper):
    connector_class = MySQLConnector
    dataflow_server = MySQLServer()
    creation_class = DatabaseCreation
    # Skips Django's MySQL model checks, which connect, while the POOL is wrong.
    validation_class = DatabaseValidation

    @cached_property
    def mysql_server_data(self) -> dict[str, Any]:
        if pool_is_wrong(self):
            # The system checks ask before anything connects: answer without the
            # connection that would raise, so they can list every problem.
            return dict(UNKNOWN_SERVER)
        return django_mysql.DatabaseWrapper.mysql_server_data.func(self)

    def dataflow_after_checkout(self, connection: Any) -> None:
        # An unbuffered cursor (OPTIONS["cursorclass"] = SSCursor) streams its rows: rows
        # left unread are still on the connection, and the next borrower's first query
        # would fail with "Commands out of sync" (the server status flags the pool reads
        # come from the previous reply and cannot tell). Such cursors are closed, which
        # reads and drops the rows, before the connection goes back (make_cursor tracks
        # them, backends/scope.py; _dataflow_close_open_cursors closes them).
        self._dataflow_tracks_cursors = issubclass(connection.cursorclass, CursorUseResultMixIn)
