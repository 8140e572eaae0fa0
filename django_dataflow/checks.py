"""System checks (``manage.py check``) for pooled DATABASES entries, with stable ids.

Settings checks run with every management command that checks (runserver, migrate,
test, check) and report *all* problems at once, each with a hint. Two checks ask the
database server and are tagged ``database``: Django runs them only for ``migrate`` and
``check --database ALIAS``. Every id is documented in docs/checks.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.db import DatabaseError, connections

from django_dataflow.options import POOL_OPTIONS, Problem, inspect_pool_options
from django_dataflow.startup import ENGINE_OF_VENDOR, pooled_entries, pooled_vendor

# Django's own ENGINEs, for the hint of a POOL left on one.
VENDOR_OF_STOCK_ENGINE = {
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.mysql": "mysql",
    "django.db.backends.sqlite3": "sqlite",
}

PROBLEM_IDS = {
    "pool_not_a_dict": "dataflow.E001",
    "unknown_option": "dataflow.E002",
    "invalid_value": "dataflow.E003",
    "wrong_vendor": "dataflow.E004",
    "conn_max_age": "dataflow.E005",
    "prepared_statements_behind_pooler": "dataflow.E006",
    "native_pool_option": "dataflow.E008",
    "options_not_a_dict": "dataflow.E009",
    "pool_option_in_options": "dataflow.E010",
    "statement_cache_unused": "dataflow.W001",
    "server_side_cursors_behind_pooler": "dataflow.W002",
}
WORKER_SETTING_ID = "dataflow.E007"
MONITORING_SETTING_ID = "dataflow.E011"
IGNORED_POOL_ID = "dataflow.W005"
RECYCLE_ID = "dataflow.W003"
BUDGET_ID = "dataflow.W004"

WORKERS_SETTING = "DATAFLOW_WORKER_PROCESSES"
WORKERS_ENV = "WEB_CONCURRENCY"


def _message(problem: Problem) -> CheckMessage:
    level = Error if problem.severity == "error" else Warning
    return level(problem.message, hint=problem.hint or None, id=PROBLEM_IDS[problem.kind])


# -- settings ------------------------------------------------------------------------------


def check_pool_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """dataflow.E001-E006, E008, W001-W002: every POOL, and what conflicts with it."""
    return pool_settings_messages(settings.DATABASES)


def pool_settings_messages(databases: Mapping[str, Any]) -> list[CheckMessage]:
    """The messages of check_pool_settings for a DATABASES setting."""
    messages = []
    for alias, vendor, settings_dict in pooled_entries(databases):
        inspection = inspect_pool_options(alias, vendor, settings_dict)
        messages.extend(_message(problem) for problem in inspection.problems)
    return messages


def check_ignored_pool_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """dataflow.W005: pool settings Django would silently ignore."""
    return ignored_pool_settings_messages(settings.DATABASES)


def ignored_pool_settings_messages(databases: Mapping[str, Any]) -> list[CheckMessage]:
    messages = []
    for alias, settings_dict in databases.items():
        if not isinstance(settings_dict, dict):
            continue
        entry = f"settings.DATABASES[{alias!r}]"
        engine = settings_dict.get("ENGINE", "")
        vendor = pooled_vendor(engine)
        if vendor is None:
            if "POOL" in settings_dict:
                stock = VENDOR_OF_STOCK_ENGINE.get(engine)
                messages.append(
                    Warning(
                        f"{entry} has a POOL, but its ENGINE {engine!r} is not one of "
                        "django-dataflow's: the POOL is ignored and nothing is pooled.",
                        hint=f"Set ENGINE to {ENGINE_OF_VENDOR[stock]!r}."
                        if stock
                        else "Use a django_dataflow.backends ENGINE, or remove POOL.",
                        id=IGNORED_POOL_ID,
                    )
                )
            continue
        for key in settings_dict:
            lowered = str(key).lower()
            if key != "POOL" and (lowered == "pool" or lowered in POOL_OPTIONS):
                messages.append(
                    Warning(
                        f"{entry} has {key!r}, which Django ignores: pool options go in "
                        "the entry's POOL dict.",
                        hint="Write POOL={'pool_size': ..., ...} (upper-case POOL, "
                        "lower-case option names).",
                        id=IGNORED_POOL_ID,
                    )
                )
    return messages


def check_monitoring_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """dataflow.E011: the DATAFLOW_* monitoring settings (read lazily otherwise, where a
    mistake surfaces in a signal receiver, a view or the publisher thread)."""
    from django_dataflow.monitoring import conf

    return [
        Error(
            problem,
            hint="See docs/monitoring.md for the setting and its values.",
            id=MONITORING_SETTING_ID,
        )
        for problem in conf.settings_problems()
    ]


def worker_processes() -> tuple[int, str]:
    """(how many worker processes each open pools, where that number came from).

    ``settings.DATAFLOW_WORKER_PROCESSES``, else the ``WEB_CONCURRENCY`` environment
    variable (gunicorn and uvicorn read it too), else 1 (their default). Raises
    ValueError naming the source of a value that is not a positive whole number.
    """
    value: Any = getattr(settings, WORKERS_SETTING, None)
    source = f"settings.{WORKERS_SETTING}"
    if value is None:
        value = os.environ.get(WORKERS_ENV, "").strip() or None
        source = f"the {WORKERS_ENV} environment variable"
    if value is None:
        return 1, f"the default (neither settings.{WORKERS_SETTING} nor {WORKERS_ENV} is set)"
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{source} must be a whole number >= 1, not {value!r}.")
    return value, source


def check_worker_processes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """dataflow.E007: the worker count the connection budget is computed with."""
    if not any(pooled_entries(settings.DATABASES)):
        return []
    try:
        worker_processes()
    except ValueError as error:
        return [
            Error(
                str(error),
                hint=f"Set settings.{WORKERS_SETTING} to the number of worker processes "
                "that serve this project (gunicorn --workers); it sizes the "
                f"connection budget check {BUDGET_ID}.",
                id=WORKER_SETTING_ID,
            )
        ]
    return []


# -- the server ------------------------------------------------------------------------------


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
        if not inspection.errors and vendor != "sqlite":
            entries[alias] = (vendor, settings_dict, inspection.options)
    messages: list[CheckMessage] = []
    for alias in databases:
        if alias in entries and entries[alias][0] == "mysql":
            messages.extend(recycle_messages(alias, entries[alias][2], connections[alias]))
    try:
        workers, source = worker_processes()
    except ValueError:
        return messages  # dataflow.E007 says why
    for group in _server_groups(entries).values():
        asked = next((alias for alias in group if alias in databases), None)
        if asked is not None:
            pools = {alias: entries[alias][2] for alias in group}
            messages.extend(budget_messages(pools, connections[asked], workers, source))
    return messages


DEFAULT_PORTS = {"postgresql": "5432", "mysql": "3306"}


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


def _ask(wrapper: Any, sql: str) -> list[tuple] | None:
    """Rows of ``sql`` on ``wrapper``'s server, or None if it cannot be reached. A
    connection opened for the question goes straight back to its pool."""
    # From the instance: reading the attribute would take a parked connection back,
    # and it would then stay checked out after the question.
    opened = wrapper.__dict__.get("connection") is None
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    except DatabaseError:
        return None
    finally:
        if opened:
            wrapper.close()


def recycle_messages(alias: str, options: dict[str, Any], wrapper: Any) -> list[CheckMessage]:
    """dataflow.W003: MySQL/MariaDB closes a session idle for wait_timeout seconds; a
    pool that keeps connections longer lends out dead ones."""
    rows = _ask(wrapper, "SELECT @@SESSION.wait_timeout")
    if not rows:
        return []
    wait_timeout = int(rows[0][0])
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
    if wrapper.vendor == "postgresql":
        rows = _ask(
            wrapper,
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('max_connections', 'superuser_reserved_connections', 'reserved_connections')",
        )
        if not rows:
            return None
        values = {name: int(setting) for name, setting in rows}
        limit = values["max_connections"]
        reserved = values.get("superuser_reserved_connections", 0)
        reserved += values.get("reserved_connections", 0)
        return limit - reserved, f"max_connections {limit} - {reserved} reserved"
    rows = _ask(wrapper, "SELECT @@GLOBAL.max_connections")
    if not rows:
        return None
    return int(rows[0][0]), f"max_connections {int(rows[0][0])}"


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
            f"PgBouncer in front. Set settings.{WORKERS_SETTING} to your real worker "
            "count. Other clients of the server are not counted.",
            id=BUDGET_ID,
        )
    ]
