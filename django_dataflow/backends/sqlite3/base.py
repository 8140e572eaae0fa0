"""DatabaseWrapper for the pooled SQLite backend.

File databases are pooled. In-memory databases are not: every new connection to
``:memory:`` is a new, empty database, so they keep Django's own single-connection
semantics (this includes Django's default in-memory test database).
"""

from __future__ import annotations

from django.db.backends.sqlite3 import base as django_sqlite3
from django.db.backends.sqlite3.creation import DatabaseCreation as DjangoCreation

from django_dataflow.backends.creation import PooledCreationMixin
from django_dataflow.backends.mixin import PooledDatabaseWrapperMixin
from django_dataflow.backends.sqlite3.adapter import SQLiteConnector


class DatabaseCreation(PooledCreationMixin, DjangoCreation):
    pass


class DatabaseWrapper(PooledDatabaseWrapperMixin, django_sqlite3.DatabaseWrapper):
    connector_class = SQLiteConnector
    creation_class = DatabaseCreation

    def dataflow_uses_pool(self) -> bool:
        return super().dataflow_uses_pool() and not self.is_in_memory_db()
