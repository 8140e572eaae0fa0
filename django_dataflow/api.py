"""The guide's ``db`` object and what it offers, for one database alias.

* ``DataFlow(using=...)``: the guide's ``db``, a thin view of one alias that keeps the
  guide's method names (``db.on_connect``, ``db.get_pool_stats()`` ...);
* ``pooled_connection()``: the guide's ``with db.connection() as conn``. The block keeps
  one connection (whatever the ``pool_scope``) and always gives it back to the pool, on
  error too. If the thread already holds a
  connection for the alias (a request in progress, an open transaction), the block gets
  a separate one and leaves the thread's own untouched;
* ``pooled_session()``: keep the thread's connection for a block, whatever the
  ``pool_scope``: session state (``SET``, temporary tables, advisory locks, ``LISTEN``)
  set inside it stays on the connection the block's queries use;
* ``get_active_connections()``: the guide's ``db.get_active_connections()``, the
  connections checked out right now.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from django_dataflow import hooks
from django_dataflow.pool import registry
from django_dataflow.stats import get_pool_stats


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
    # One connection for the whole block, also with pool_scope="transaction".
    session = getattr(wrapper, "dataflow_session", None)
    try:
        with session() if session is not None else nullcontext():
            wrapper.ensure_connection()
            yield PooledConnection(wrapper)
    finally:
        wrapper.close()


@contextmanager
def pooled_session(using: str = DEFAULT_DB_ALIAS) -> Iterator[Any]:
    """Keep this thread's connection for ``using`` for the whole block and yield its
    wrapper (``connections[using]``): every query of the block runs on the same database
    session. Needed only with ``pool_scope = "transaction"``, where a connection otherwise
    goes back between transactions; with the request scope the request keeps it anyway."""
    wrapper = connections[using]
    session = getattr(wrapper, "dataflow_session", None)
    if session is None:  # not one of our ENGINEs: a Django connection keeps its session
        wrapper.ensure_connection()
        yield wrapper
        return
    with session() as kept:
        yield kept


class ActiveConnection:
    """A read-mostly view of one checked-out pooled connection."""

    __slots__ = ("_record", "alias")

    def __init__(self, alias: str, record: Any) -> None:
        self.alias = alias
        self._record = record

    @property
    def age(self) -> float:
        """Seconds since the physical connection was opened."""
        return self._record.age

    @property
    def checked_out_for(self) -> float:
        """Seconds since its current borrower checked it out."""
        return self._record.checked_out_for

    @property
    def info(self) -> dict[str, Any]:
        """The connection record's ``info`` dict (shared with the hooks)."""
        return self._record.info

    @property
    def thread(self) -> threading.Thread | None:
        """The borrowing thread (None for a connection shared across threads on purpose)."""
        return self._record.thread

    def invalidate(self, reason: str = "manual") -> None:
        """Discard the connection when it comes back instead of reusing it.

        If the calling thread holds it, it is closed (given back and discarded) now.
        """
        record = self._record
        record.invalidate(reason)
        if record.holder is not threading.current_thread():
            return
        for wrapper in connections.all(initialized_only=True):
            if getattr(wrapper, "dataflow_record", None) is record:
                wrapper.close()

    def __repr__(self) -> str:
        return (
            f"<ActiveConnection {self.alias!r} age={self.age:.1f}s "
            f"out for {self.checked_out_for:.1f}s>"
        )


def get_active_connections(using: str = DEFAULT_DB_ALIAS) -> list[ActiveConnection]:
    """The connections of ``using``'s pools in this process that are checked out now."""
    return [
        ActiveConnection(using, record)
        for pool in registry.all_pools(using)
        for record in pool.checked_out_records()
    ]


class DataFlow:
    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using

    @property
    def dialect(self) -> str:
        """``"postgresql"``, ``"mysql"`` or ``"sqlite"``."""
        return connections[self.using].vendor

    def on_connect(self, function: Callable | None = None) -> Callable:
        return hooks.on_connect(function, using=self.using)

    def on_checkout(self, function: Callable | None = None) -> Callable:
        return hooks.on_checkout(function, using=self.using)

    def on_checkin(self, function: Callable | None = None) -> Callable:
        return hooks.on_checkin(function, using=self.using)

    def error_handler(self, function: Callable | None = None) -> Callable:
        return hooks.error_handler(function, using=self.using)

    def get_active_connections(self) -> list[ActiveConnection]:
        return get_active_connections(self.using)

    def connection(self) -> Any:
        """``with db.connection() as conn:`` — see ``pooled_connection``."""
        return pooled_connection(self.using)

    def get_pool_stats(self) -> dict[str, Any]:
        return get_pool_stats(self.using)

    def __repr__(self) -> str:
        return f"<DataFlow using={self.using!r}>"
