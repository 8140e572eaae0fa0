"""System checks that ask the database server (tagged ``database``).

Django runs them only for ``migrate`` and ``check --database ALIAS``. What to ask each
vendor's server is the backend's business (``backends/<vendor>/server.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

from django_dataflow import conf
from django_dataflow.backends.server import wrapper_queries
from django_dataflow.settings.engines import DEFAULT_PORTS, pooled_entries
from django_dataflow.settings.validation import inspect_pool_options

RECYCLE_ID = "dataflow.W003"
BUDGET_ID = "dataflow.W004"


def register_checks() -> None:
    """Register the checks of this module (called from AppConfig.ready())."""
    register(check_server_limits, "dataflow", Tags.database)


def check_server_limits(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """dataflow.W003 (pool_recycle vs wait_timeout) and W004 (connection budget).

    Asks the servers of ``databases``; Django passes them for ``migrate`` and
    ``check --database``. Entries with configuration errors are skipped (their errors
    are reported by check_pool_settings), and so is a server that cannot be reached.
    """
    if not databases:
        return []
    entries = {}
    for alias, vendor, settings_dict in pooled_entries(settings.DATABASES):
        inspection = inspect_pool_options(alias, vendor, settings_dict)
        # Only vendors with a server (a default port) have limits to ask about.
        if not inspection.errors and vendor in DEFAULT_PORTS:
            entries[alias] = (vendor, settings_dict, inspection.options)
    messages: list[CheckMessage] = []
    for alias in databases:
        if alias in entries:
            messages.extend(recycle_messages(alias, entries[alias][2], connections[alias]))
    try:
        workers, source = conf.worker_processes()
    except ImproperlyConfigured:
        return messages  # dataflow.E007 says why
    for group in _server_groups(entries).values():
        asked = next((alias for alias in group if alias in databases), None)
        if asked is not None:
            pools = {alias: entries[alias][2] for alias in group}
            messages.extend(budget_messages(pools, connections[asked], workers, source))
    return messages


def _server_groups(entries: dict[str, tuple[str, dict, dict]]) -> dict[tuple, list[str]]:
    """Aliases grouped by the server they reach: their pools share its max_connections."""
    groups: dict[tuple, list[str]] = {}
    for alias, (vendor, settings_dict, _options) in entries.items():
        key = (
            vendor,
            str(settings_dict.get("HOST") or "localhost"),
            # An empty PORT is the vendor's default: the same server as one that names it.
            str(settings_dict.get("PORT") or DEFAULT_PORTS.get(vendor, "")),
        )
        groups.setdefault(key, []).append(alias)
    return groups


def _ask(wrapper: Any, question: Callable[[Any], Any]) -> Any:
    """``question(cursor)`` on ``wrapper``'s server (a method of its server queries), or
    None if it cannot be reached. A connection opened for the question goes straight
    back to its pool."""
    # From the instance: reading the attribute would take a parked connection back,
    # and it would then stay checked out after the question.
    opened = wrapper.__dict__.get("connection") is None
    try:
        with wrapper.cursor() as cursor:
            return question(cursor)
    except DatabaseError:
        return None
    finally:
        if opened:
            wrapper.close()


def recycle_messages(alias: str, options: dict[str, Any], wrapper: Any) -> list[CheckMessage]:
    """dataflow.W003: MySQL/MariaDB closes a session idle for wait_timeout seconds; a
    pool that keeps connections longer lends out dead ones."""
    queries = wrapper_queries(wrapper)
    if not queries.closes_idle_sessions:
        return []
    wait_timeout = _ask(wrapper, queries.idle_session_timeout)
    if wait_timeout is None:
        return []
    recycle = options["pool_recycle"]
    if recycle and recycle < wait_timeout:
        return []
    where = f"settings.DATABASES[{alias!r}]['POOL']['pool_recycle']"
    shown = "never recycles" if not recycle else f"is {recycle:g} s"
    suggestion = max(1, int(wait_timeout * 0.9))
    return [
        Warning(
            f"{where} {shown}, not below the server's wait_timeout of {wait_timeout} s. "
            "The server closes a connection idle that long; lent again, it fails with "
            "'MySQL server has gone away'.",
            hint=f"Set pool_recycle below {wait_timeout}, e.g. {suggestion}, or raise "
            "wait_timeout on the server. (pool_pre_ping replaces such connections too, "
            "at the cost of a ping.)",
            id=RECYCLE_ID,
        )
    ]


def server_connection_limit(wrapper: Any) -> tuple[int, str] | None:
    """(connections the server accepts from ordinary roles, how that was computed)."""
    return _ask(wrapper, wrapper_queries(wrapper).connection_limit)


def budget_messages(
    pools: dict[str, dict[str, Any]], wrapper: Any, workers: int, source: str
) -> list[CheckMessage]:
    """dataflow.W004: the pools of ``pools`` (aliases on one server), times ``workers``
    processes, against the server's max_connections (asked through ``wrapper``)."""
    limit = server_connection_limit(wrapper)
    if limit is None:
        return []
    accepted, arithmetic = limit
    per_alias = {
        alias: (options["pool_size"], options["pool_max_overflow"])
        for alias, options in pools.items()
    }
    per_process = sum(size + overflow for size, overflow in per_alias.values())
    total = per_process * workers
    if total <= accepted:
        return []
    names = ", ".join(repr(alias) for alias in per_alias)
    detail = "; ".join(
        f"{alias!r}: pool_size {size} + pool_max_overflow {overflow}"
        for alias, (size, overflow) in per_alias.items()
    )
    fits = accepted // per_process
    fitting = (
        f"At most {fits} worker process{'es' if fits != 1 else ''} fit."
        if fits
        else "Not even one process fits."
    )
    settings_dict = wrapper.settings_dict
    server = f"{wrapper.vendor} at {settings_dict.get('HOST') or 'localhost'}"
    if settings_dict.get("PORT"):
        server += f":{settings_dict['PORT']}"
    return [
        Warning(
            f"DATABASES {names} ({server}) may open up to {per_process} connections per "
            f"process ({detail}). With {workers} worker process"
            f"{'es' if workers != 1 else ''} ({source}) that is {per_process} x {workers} "
            f"= {total}, more than the {accepted} the server accepts ({arithmetic}).",
            hint=f"{fitting} Lower pool_size / pool_max_overflow, run fewer worker "
            "processes, raise max_connections on the server, or put a pooler such as "
            f"PgBouncer in front. Set settings.{conf.WORKER_PROCESSES} to your real worker "
            "count. Other clients of the server are not counted.",
            id=BUDGET_ID,
        )
    ]
