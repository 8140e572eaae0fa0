"""System checks of pooled DATABASES entries and of the DATAFLOW_* settings.

They run with every management command that checks (runserver, migrate, test, check)
and report *all* problems at once, each with a stable id and a hint (docs/checks.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Warning, register
from django.core.exceptions import ImproperlyConfigured

from django_dataflow import conf
from django_dataflow.monitoring import safedir
from django_dataflow.settings.engines import (
    ENGINE_OF_VENDOR,
    VENDOR_OF_STOCK_ENGINE,
    pooled_entries,
    pooled_vendor,
)
from django_dataflow.settings.options import POOL_OPTIONS
from django_dataflow.settings.validation import Problem, inspect_pool_options

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
    "transaction_scope_without_autocommit": "dataflow.E012",
    "statement_cache_unused": "dataflow.W001",
    "server_side_cursors_behind_pooler": "dataflow.W002",
    "pool_options_moved": "dataflow.I001",
}
WORKER_SETTING_ID = "dataflow.E007"
MONITORING_SETTING_ID = "dataflow.E011"
IGNORED_POOL_ID = "dataflow.W005"
STATS_DIR_ID = "dataflow.W006"
OPENTELEMETRY_ID = "dataflow.E013"
# What DATAFLOW_OPENTELEMETRY needs, and the command that installs it.
OPENTELEMETRY_MODULE = "opentelemetry.metrics"
OPENTELEMETRY_INSTALL = 'pip install "django-dataflow[opentelemetry]"'


def register_checks() -> None:
    """Register the checks of this module (called from AppConfig.ready())."""
    for check in (
        check_pool_settings,
        check_worker_processes,
        check_ignored_pool_settings,
        check_monitoring_settings,
        check_stats_dir,
        check_opentelemetry,
    ):
        register(check, "dataflow")


def _message(problem: Problem) -> CheckMessage:
    level = {"error": Error, "info": Info}.get(problem.severity, Warning)
    return level(problem.message, hint=problem.hint or None, id=PROBLEM_IDS[problem.kind])


def check_pool_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """dataflow.E001-E006, E008-E010, W001-W002, I001: every POOL, and what conflicts
    with it."""
    return pool_settings_messages(settings.DATABASES)


def pool_settings_messages(databases: Mapping[str, Any]) -> list[CheckMessage]:
    """The messages of check_pool_settings for a DATABASES setting."""
    messages: list[CheckMessage] = []
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
            driver_options = settings_dict.get("OPTIONS")
            stock = VENDOR_OF_STOCK_ENGINE.get(engine)
            if stock and isinstance(driver_options, dict):
                found = [key for key in driver_options if key in POOL_OPTIONS]
                if found:
                    messages.append(
                        Warning(
                            f"{entry}['OPTIONS'] has the pool options "
                            f"{', '.join(map(repr, found))}, but its ENGINE {engine!r} is "
                            "Django's: nothing is pooled, and the driver refuses them.",
                            hint=f"Set ENGINE to {ENGINE_OF_VENDOR[stock]!r}: "
                            f"env.db(engine={ENGINE_OF_VENDOR[stock]!r}) or "
                            f"dj_database_url.config(engine={ENGINE_OF_VENDOR[stock]!r}).",
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
    return [
        Error(
            problem,
            hint="See docs/monitoring.md for the setting and its values.",
            id=MONITORING_SETTING_ID,
        )
        for problem in conf.settings_problems()
    ]


def check_stats_dir(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """dataflow.W006: the statistics directory would be refused (another user's, open
    to others, a symlink, under a parent others can write). Publishing only logs it,
    once, at run time: monitoring is then silently off. Reads only."""
    if conf.settings_problems() or not conf.publish_enabled():
        return []  # E011 says what is wrong; or nothing is published
    path = conf.stats_dir()
    try:
        safedir.inspect(path)
    except OSError as error:
        return [
            Warning(
                f"Pool statistics cannot be published: {error}",
                hint=f"Set settings.{conf.STATS_DIR} (or the environment variable) to a "
                "directory of the app's user that only it can write, whose parents only "
                "it or root can write (docs/monitoring.md).",
                id=STATS_DIR_ID,
            )
        ]
    return []


def check_opentelemetry(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """dataflow.E013: DATAFLOW_OPENTELEMETRY is True, but opentelemetry-api is missing
    (AppConfig.ready() then exports nothing, and says nothing)."""
    try:
        if not conf.opentelemetry_enabled():
            return []
    except ImproperlyConfigured:
        return []  # E011 says what is wrong
    try:
        importlib.import_module(OPENTELEMETRY_MODULE)
    except ImportError as error:
        return [
            Error(
                f"settings.{conf.OPENTELEMETRY} is True, but opentelemetry-api cannot be "
                f"imported ({error}): no OpenTelemetry metrics of the pools are exported.",
                hint=f"{OPENTELEMETRY_INSTALL}, or set settings.{conf.OPENTELEMETRY} = False.",
                id=OPENTELEMETRY_ID,
            )
        ]
    return []


def check_worker_processes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """dataflow.E007: the worker count the connection budget is computed with."""
    if not any(pooled_entries(settings.DATABASES)):
        return []
    try:
        conf.worker_processes()
    except ImproperlyConfigured as error:
        return [
            Error(
                str(error),
                hint=f"Set settings.{conf.WORKER_PROCESSES} to the number of worker processes "
                "that serve this project (gunicorn --workers); it sizes the "
                f"connection budget check dataflow.W004.",
                id=WORKER_SETTING_ID,
            )
        ]
    return []
