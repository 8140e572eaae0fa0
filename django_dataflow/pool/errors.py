"""Errors raised by the pool engine.

They carry no Django dependency; the backends re-raise them as Django database errors
(``django_dataflow.PoolTimeout`` and ``django_dataflow.PoolClosed``).
"""

from __future__ import annotations

from typing import Any


class PoolEngineError(Exception):
    """Base class of the engine's own errors."""


class PoolTimeoutError(PoolEngineError):
    """No connection became available within the checkout timeout.

    ``last_connect_error``: when connects failed meanwhile (a server or role out of
    sessions), the last one's error, also the ``__cause__`` it is raised from. The
    other attributes are the pool at the timeout (see reporting.py): ``alias``,
    ``vendor``, ``pool_size``, ``max_overflow``, ``checked_out`` (connections lent,
    parked ones not counted), ``waiting`` (other borrowers queued) and ``waited``
    (seconds); None when not given.
    """

    def __init__(
        self,
        message: str,
        last_connect_error: BaseException | None = None,
        *,
        alias: str | None = None,
        vendor: str | None = None,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        checked_out: int | None = None,
        waiting: int | None = None,
        waited: float | None = None,
    ) -> None:
        super().__init__(message)
        self.last_connect_error = last_connect_error
        self.alias = alias
        self.vendor = vendor
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.checked_out = checked_out
        self.waiting = waiting
        self.waited = waited

    def snapshot(self) -> dict[str, Any]:
        """The attributes above, by name (``PoolTimeout``'s keyword arguments)."""
        return {name: getattr(self, name) for name in SNAPSHOT_FIELDS}

    def log_extra(self) -> dict[str, Any]:
        """The ``extra`` of the timeout's log record."""
        return {name: getattr(self, name) for name in LOG_FIELDS}


# The fields of a pool's log records, and what a timeout adds to them.
LOG_FIELDS = ("alias", "vendor", "pool_size", "checked_out", "waiting", "waited")
SNAPSHOT_FIELDS = (*LOG_FIELDS, "max_overflow", "last_connect_error")


class PoolClosedError(PoolEngineError):
    """The pool was closed (process shutdown, test database teardown, fork)."""
