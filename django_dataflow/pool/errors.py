"""Errors raised by the pool engine.

They carry no Django dependency; the backends re-raise them as Django database errors
(``django_dataflow.PoolTimeout`` and ``django_dataflow.PoolClosed``).
"""

from __future__ import annotations


class PoolEngineError(Exception):
    """Base class of the engine's own errors."""


class PoolTimeoutError(PoolEngineError):
    """No connection became available within the checkout timeout."""


class PoolClosedError(PoolEngineError):
    """The pool was closed (process shutdown, test database teardown, fork)."""
