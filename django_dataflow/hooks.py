"""Lifecycle hooks the guide's way: ``@on_connect``, ``@on_checkout``, ``@on_checkin``,
``@error_handler``, on top of the signals in ``django_dataflow.signals``.

The guide's hooks receive the DB-API connection and call ``connection.execute(sql)``.
psycopg and sqlite3 connections have ``execute``; mysqlclient's do not, so hooks get a
``HookConnection`` that adds it everywhere (how, each backend's connector says). The
signals themselves are sent by ``backends/events.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django_dataflow.signals import pool_checkin, pool_checkout, pool_connect

logger = logging.getLogger("django_dataflow.pool")

# Bound on retries an error handler may ask for after one PoolTimeout.
MAX_RETRIES = 3


class HookConnection:
    """A DB-API connection as hooks see it: the driver's connection, plus
    ``execute(sql, params=None)`` on every driver."""

    __slots__ = ("connector", "dbapi_connection", "record", "vendor")

    def __init__(self, dbapi_connection: Any, vendor: str, record: Any, connector: Any) -> None:
        self.dbapi_connection = dbapi_connection
        self.vendor = vendor
        self.record = record
        # The backend's connector class: runs execute() on its driver.
        self.connector = connector

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dbapi_connection, name)

    def execute(self, sql: str, params: Any = None) -> Any:
        """Run one statement; return the driver's cursor (or None for a ``SET
        application_name`` kept in ``connection_record.info`` where the server has no
        such setting)."""
        return self.connector.hook_execute(self.dbapi_connection, self.record, sql, params)

    def __repr__(self) -> str:
        return f"<HookConnection {self.dbapi_connection!r}>"


def _hook_decorator(signal: Any, call: Callable[[Callable, dict], None], label: str) -> Callable:
    def decorator(function: Callable | None = None, *, using: str | None = None) -> Callable:
        def register(function: Callable) -> Callable:
            def receiver(sender: Any, alias: str, **kwargs: Any) -> None:
                if using is None or alias == using:
                    call(function, kwargs)

            # By identity: registering one function twice runs it once, while two
            # different ones always both run (lambdas, closures of one factory and
            # functools.partial objects share or lack a __qualname__). A bound method
            # is a new object at each access: it is the same hook if its object and its
            # function are. The receiver keeps them alive, so no id is reused meanwhile.
            bound_to = getattr(function, "__self__", None)
            target = getattr(function, "__func__", function)
            uid = (label, id(bound_to), id(target), using)
            signal.connect(receiver, weak=False, dispatch_uid=uid)
            return function

        return register(function) if function is not None else register

    decorator.__name__ = label
    decorator.__doc__ = (
        f"Register ``function`` to run {label.replace('on_', 'on ')}; "
        f"``@{label}`` or ``@{label}(using=alias)``."
    )
    return decorator


on_connect = _hook_decorator(
    pool_connect,
    lambda function, kw: function(kw["connection"], kw["connection_record"]),
    "on_connect",
)
on_checkout = _hook_decorator(
    pool_checkout,
    lambda function, kw: function(
        kw["connection"], kw["connection_record"], kw["connection_proxy"]
    ),
    "on_checkout",
)
on_checkin = _hook_decorator(
    pool_checkin,
    lambda function, kw: function(kw["connection"], kw["connection_record"]),
    "on_checkin",
)

# (alias or None for every alias, handler)
_error_handlers: list[tuple[str | None, Callable[[Exception, dict], Any]]] = []


def error_handler(function: Callable | None = None, *, using: str | None = None) -> Callable:
    """Register ``function(error, context)`` to decide what happens on PoolTimeout.

    ``context`` has ``alias``, ``retry_count`` and ``stats``. Return
    ``{"action": "retry", "delay": seconds}`` to try again (at most MAX_RETRIES times);
    anything else lets the error propagate.
    """

    def register(function: Callable) -> Callable:
        if (using, function) not in _error_handlers:
            _error_handlers.append((using, function))
        return function

    return register(function) if function is not None else register


def has_error_handlers() -> bool:
    return bool(_error_handlers)


def retry_delay_after_timeout(alias: str, error: Exception, retry_count: int, stats: dict):
    """Ask the error handlers about a PoolTimeout: the delay before a retry, or None."""
    if retry_count >= MAX_RETRIES:
        return None
    context = {"alias": alias, "retry_count": retry_count, "stats": stats}
    for using, handler in list(_error_handlers):
        if using is not None and using != alias:
            continue
        decision = handler(error, context)
        if isinstance(decision, dict) and decision.get("action") == "retry":
            return max(0.0, float(decision.get("delay", 0.0)))
    return None
