"""Pooled database backends: ``django_dataflow.backends.postgresql``, ``.mysql``, ``.sqlite3``.

Each vendor package is a thin ``DatabaseWrapper(PooledDatabaseWrapperMixin, <Django's
wrapper>)`` plus a connector that knows how to ping, reset and recognise a dead
connection of that vendor.
"""
