"""The pool engine: a thread-safe pool of DB-API connections.

This package knows nothing about Django. It is given a *connector* (how to open, check,
reset and close one physical connection) and does the bookkeeping: limits, waiters,
recycling, pre-ping, invalidation and statistics. The Django glue lives in
``django_dataflow.backends``.
"""

from __future__ import annotations

from django_dataflow.pool.connector import Connector
from django_dataflow.pool.errors import PoolClosedError, PoolTimeoutError
from django_dataflow.pool.pool import ConnectionPool
from django_dataflow.pool.record import ConnectionRecord

__all__ = [
    "ConnectionPool",
    "ConnectionRecord",
    "Connector",
    "PoolClosedError",
    "PoolTimeoutError",
]
