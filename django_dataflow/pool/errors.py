"""Errors raised by the pool engine.

They carry no Django dependency; the backends re-raise them as Django database errors
(``django_dataflow.PoolTimeout`` and ``django_dataflow.PoolClosed``).
"""

from __future__ import annotations


class PoolEngineError(Exception):
    """Base class of the engine's own errors."""


class PoolTimeoutError(PoolEngineError):
    """No connection became available within the checkout timeout.

    ``last_connect_error``: when connects failed meanwhile (a server or role out of
    sessions), the last one's error, also the ``__cause__`` it is raised from.
    """

    def __init__(self, message: str, last_connect_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.last_connect_error = last_connect_error


class PoolClosedError(PoolEngineError):
    """The pool was closed (process shutdown, test database teardown, fork)."""
