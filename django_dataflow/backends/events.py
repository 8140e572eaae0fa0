"""The one place the lifecycle signals of ``django_dataflow.signals`` are sent from.

Two senders share the signals' arguments (``sender``, ``alias``, ``vendor``, the
``HookConnection`` and the record): the wrapper, for what happens on its side of a
connection's life (connect, checkout, checkin: ``send``), and the pool engine, through
the event listener each pool is made with (invalidate, timeout, leak: ``SignalEvents``).
Both are called only when the signal has receivers, so a pool without hooks pays for
none of this.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import thread as futures_thread
from typing import Any

from django.db.utils import DatabaseError

from django_dataflow import signals
from django_dataflow.errors import HookError
from django_dataflow.hooks import HookConnection
from django_dataflow.pool.reporting import log_extra

logger = logging.getLogger("django_dataflow.pool")


def signal_name(signal: Any) -> str:
    """The name ``django_dataflow.signals`` gives ``signal`` (for messages)."""
    return next((name for name in signals.__all__ if getattr(signals, name) is signal), "?")


def hook_connection(wrapper_class: Any, record: Any) -> HookConnection:
    """The ``connection`` argument of a signal about ``record``'s connection."""
    return HookConnection(
        record.connection, wrapper_class.vendor, record, wrapper_class.connector_class
    )


def send(wrapper: Any, signal: Any, record: Any, **extra: Any) -> None:
    """Send a lifecycle signal for the connection ``wrapper`` holds; a receiver's
    non-database error becomes HookError."""
    wrapper_class = wrapper.__class__
    try:
        signal.send(
            sender=wrapper_class,
            alias=wrapper.alias,
            vendor=wrapper.vendor,
            connection=hook_connection(wrapper_class, record),
            connection_record=record,
            **extra,
        )
    except (wrapper.Database.Error, DatabaseError):
        raise  # Django translates driver errors on the way out of connect()
    except Exception as error:
        raise HookError(
            f"A receiver of django_dataflow.signals.{signal_name(signal)} for database "
            f"{wrapper.alias!r} failed: {error!r}"
        ) from error


class SignalEvents:
    """The pool engine's event listener for one pool: turns engine events into signals."""

    def __init__(self, wrapper_class: type[Any], alias: str) -> None:
        self.wrapper_class = wrapper_class
        self.alias = alias
        self.vendor = wrapper_class.vendor

    def _send(self, signal: Any, record: Any = None, **extra: Any) -> None:
        if not signal.receivers:
            return
        if record is not None:
            extra["connection"] = hook_connection(self.wrapper_class, record)
            extra["connection_record"] = record
        signal.send(sender=self.wrapper_class, alias=self.alias, vendor=self.vendor, **extra)

    def invalidated(self, pool: Any, record: Any, reason: str) -> None:
        self._send(signals.pool_invalidate, record, reason=reason)

    def timed_out(self, pool: Any, waited: float, message: str) -> None:
        if signals.pool_timeout.receivers:
            self._send(signals.pool_timeout, waited=waited, message=message, stats=pool.get_stats())

    def leaked(self, pool: Any, record: Any) -> None:
        cause = leak_cause(record.holder)
        if cause:
            logger.warning(
                "The possible connection leak on %r: %s", self.alias, cause, extra=log_extra(pool)
            )
        self._send(
            signals.pool_leak,
            record,
            checked_out_for=record.checked_out_for,
            stack=record.checkout_stack,
        )


def leak_cause(holder: threading.Thread | None) -> str | None:
    """What holds a leaked connection when it is a known pattern, not a slow request: a
    worker thread of a shared thread pool (``sync_to_async(thread_sensitive=False)``
    runs on the event loop's default executor). Django closes a request's connections
    in the thread that served it, at its end; a pool thread lives on, and the
    connection it opened stays checked out until the thread ends. (The one-thread
    executors Django's ASGI handler runs a request's sync code in end with it.)"""
    if holder is None or getattr(holder, "_target", None) is not futures_thread._worker:
        return None
    args = getattr(holder, "_args", ())
    executor = args[0]() if args and callable(args[0]) else None  # a weak reference
    if executor is None or getattr(executor, "_max_workers", 1) <= 1:
        return None
    return (
        f"it was checked out by {holder.name}, a worker thread of a shared thread pool "
        "(sync_to_async(thread_sensitive=False), loop.run_in_executor()). Django returns "
        "a connection when the request's own thread ends its request; a pool thread "
        "outlives the request and keeps the connection. Close it in the function "
        "(django.db.close_old_connections() or connection.close() before returning), or "
        "use sync_to_async(thread_sensitive=True)."
    )
