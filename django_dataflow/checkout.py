"""``pooled_connection()``: the guide's ``with db.connection() as conn`` for Django.

The block always gives its connection back to the pool, on error too. If the thread
already holds a connection for the alias (a request in progress, an open transaction),
the block gets a separate one and leaves the thread's own untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


class PooledConnection:
    """A Django connection with the guide's ``execute()`` added."""

    __slots__ = ("wrapper",)

    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapper, name)

    def execute(self, sql: str, params: Any = None) -> Any:
        """Run one statement: its rows if it returns any, else the affected row count."""
        with self.wrapper.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.description is None:
                return cursor.rowcount
            return list(cursor.fetchall())


@contextmanager
def pooled_connection(using: str = DEFAULT_DB_ALIAS) -> Iterator[PooledConnection]:
    """Check out a connection for ``using`` and give it back when the block ends."""
    wrapper = connections[using]
    # Read from the instance: reading the attribute would take a parked connection
    # back, and the thread, holding nothing really, would then need a second one.
    if wrapper.__dict__.get("connection") is not None:
        wrapper = wrapper.copy()  # the thread's own connection stays as it is
    try:
        wrapper.ensure_connection()
        yield PooledConnection(wrapper)
    finally:
        wrapper.close()
