"""DatabaseWrapper for the pooled MySQL / MariaDB backend.

Everything is Django's MySQL backend except connection opening and closing, which go
through the pool (see ``django_dataflow.backends.mixin``).
"""

from __future__ import annotations

from django.db.backends.mysql import base as django_mysql
from django.db.backends.mysql.creation import DatabaseCreation as DjangoCreation

from django_dataflow.backends.creation import PooledCreationMixin
from django_dataflow.backends.mixin import PooledDatabaseWrapperMixin
from django_dataflow.backends.mysql.adapter import MySQLConnector


class DatabaseCreation(PooledCreationMixin, DjangoCreation):
    pass


class DatabaseWrapper(PooledDatabaseWrapperMixin, django_mysql.DatabaseWrapper):
    connector_class = MySQLConnector
    creation_class = DatabaseCreation
