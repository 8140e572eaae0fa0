"""DatabaseWrapper for the pooled SQLite backend.

File databases are pooled. In-memory databases are not: every new connection to
``:memory:`` is a new, empty database, so they keep Django's own single-connection
semantics (this includes Django's default in-memory test database).
"""

from __future__ import annotations

from django.db.backends.sqlite3 import base as django_sqlite3
from django.db.backends.sqlite3.creation import DatabaseCreation as DjangoCreation

from django_dataflow.backends.base import PooledDatabaseWrapperMixin
from django_dataflow.backends.creation import PooledCreationMixin, close_pools_on_database
from django_dataflow.backends.sqlite3.connector import SQLiteConnector
from django_dataflow.backends.sqlite3.server import SQLiteServer


class DatabaseCreation(PooledCreationMixin, DjangoCreation):
    def _clone_test_db(self, suffix, verbosity, keepdb=False):
        # Django clones a file test database (the parallel runner) by copying the file.
        # In WAL mode (DataFlowConfig's default) what migrate wrote may still be in the
        # -wal file beside it, and a copy of the main file alone would have no tables:
        # write it back first. The pools' idle connections are closed before, so the
        # checkpoint can truncate the log; a database not in WAL mode is not affected.
        source = self.connection.settings_dict["NAME"]
        if not self.is_in_memory_db(source):
            close_pools_on_database(source)
            with self.connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return super()._clone_test_db(suffix, verbosity, keepdb)


class DatabaseWrapper(PooledDatabaseWrapperMixin, django_sqlite3.DatabaseWrapper):
    connector_class = SQLiteConnector
    dataflow_server = SQLiteServer()
    creation_class = DatabaseCreation

    # A cursor that outlives its request (kept in a cache or a reference cycle) with a
    # SELECT not read to its end holds the statement open, and with it its WAL read
    # snapshot: whoever borrows the connection next would read the database as it was
    # then. Every cursor is closed before the connection goes back (backends/scope.py),
    # as MySQL's streaming cursors are.
    _dataflow_tracks_cursors = True

    def dataflow_uses_pool(self) -> bool:
        return super().dataflow_uses_pool() and not self.is_in_memory_db()
