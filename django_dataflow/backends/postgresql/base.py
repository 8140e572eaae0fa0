"""DatabaseWrapper for the pooled PostgreSQL backend.

Everything is Django's PostgreSQL backend except connection opening and closing, which
go through the pool (see ``django_dataflow.backends.base``).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base as django_postgresql
from django.db.backends.postgresql.creation import DatabaseCreation as DjangoCreation

from django_dataflow.backends.base import PooledDatabaseWrapperMixin
from django_dataflow.backends.creation import PooledCreationMixin
from django_dataflow.backends.postgresql.connector import PostgreSQLConnector
from django_dataflow.backends.postgresql.server import PostgreSQLServer


class DatabaseCreation(PooledCreationMixin, DjangoCreation):
    pass


class DatabaseWrapper(PooledDatabaseWrapperMixin, django_postgresql.DatabaseWrapper):
    connector_class = PostgreSQLConnector
    dataflow_server = PostgreSQLServer()
    creation_class = DatabaseCreation
    # psycopg's adapters map: made from USE_TZ and the time zone (both in the pool key)
    # by an lru_cache that threads connecting at once can fill twice, with two distinct
    # objects. Keyed by identity, one alias would get two pools.
    dataflow_params_not_in_key = frozenset({"context"})
    # Django's PostgreSQL get_connection_params() only builds the dict (backends/pools.py).
    dataflow_params_set_attributes = False

    def chunked_cursor(self) -> Any:
        # The only way Django makes a server-side cursor (QuerySet.iterator()): closed
        # before the connection goes back, if its iterator left it open (see
        # _dataflow_close_open_cursors). Here rather than in create_cursor, which every
        # query goes through.
        cursor = super().chunked_cursor()
        self._dataflow_track_cursor(cursor.cursor)
        return cursor

    def ensure_timezone(self) -> bool:
        # Django calls this when TIME_ZONE or USE_TZ changes (override_settings), and it
        # SETs the session time zone of the connection held right now. That connection
        # belongs to the pool of the old zone (the zone is part of the pool key): lent
        # again from there, every timestamptz it reads would be off by the difference.
        # So it is discarded when it comes back instead.
        changed = super().ensure_timezone()
        record = self.dataflow_record
        if changed and record is not None:
            record.invalidate("time_zone_changed")
        return changed

    def dataflow_after_checkout(self, connection: Any) -> None:
        # Django sets this while opening a physical connection; a reused one was
        # opened by another wrapper, so read it back from the connection.
        level = connection.isolation_level
        self.isolation_level = (
            django_postgresql.IsolationLevel.READ_COMMITTED if level is None else level
        )
