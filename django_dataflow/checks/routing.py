"""System checks of ``DATAFLOW_ROUTING`` and the router (ids ``dataflow.E101`` to ``W104``).

Every error the parser in ``routing/config.py`` finds becomes one message, so
``manage.py check`` lists them all at once, where the router would refuse to route; the
warnings (which do not stop the router) are worked out here.

=============== ================================================================
id              problem
=============== ================================================================
dataflow.E101   DATAFLOW_ROUTING, or one of its sets, is not a dict
dataflow.E102   a set has an unknown key (the nearest valid one is suggested)
dataflow.E103   a primary, replica or analytics alias is not in DATABASES
dataflow.E104   an alias plays two parts (a replica listed twice, a replica that is a
                primary, an analytics alias that is a primary)
dataflow.E105   ``replicas`` is not a list or dict, or has a bad weight
dataflow.E106   a bad value: a list that is not of strings, negative seconds …
dataflow.E107   an app label or model in ``apps``/``models``/``analytics_*`` is unknown
dataflow.E108   an app or model is claimed twice
dataflow.E109   analytics models without a writable analytics alias
dataflow.W101   the router is listed without the setting, or the setting without it
dataflow.W102   a replica is not a test mirror of its primary (``TEST["MIRROR"]``)
dataflow.W103   a replica has no ``connect_timeout``: falling back could take minutes
dataflow.W104   a set other than "default" claims no apps or models
=============== ================================================================
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.db import DEFAULT_DB_ALIAS

from django_dataflow.routing.config import SETTING, RoutingConfig, parse
from django_dataflow.routing.router import ROUTER_PATH, ROUTER_PATHS


def register_checks() -> None:
    """Register the check of this module (called from AppConfig.ready())."""
    register(check_routing, "dataflow")


def check_routing(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report every problem of ``DATAFLOW_ROUTING`` and of the router's installation."""
    raw = getattr(settings, SETTING, None)
    routers = [
        router if isinstance(router, str) else f"{type(router).__module__}.{type(router).__name__}"
        for router in settings.DATABASE_ROUTERS
    ]
    listed = any(path in routers for path in ROUTER_PATHS)
    messages: list[CheckMessage] = []
    if raw is None:
        if listed:
            messages.append(
                Warning(
                    f"{ROUTER_PATH} is in DATABASE_ROUTERS but {SETTING} is not set, so it "
                    "routes nothing.",
                    hint=f"Describe your primaries and replicas in settings.{SETTING}.",
                    id="dataflow.W101",
                )
            )
        return messages
    if not listed:
        messages.append(
            Warning(
                f"settings.{SETTING} is set but {ROUTER_PATH} is not in DATABASE_ROUTERS.",
                hint=f'Add "{ROUTER_PATH}" to DATABASE_ROUTERS.',
                id="dataflow.W101",
            )
        )
    config, problems = parse(raw)
    messages.extend(Error(p.msg, hint=p.hint, id=f"dataflow.{p.id}") for p in problems)
    if config is not None:
        messages.extend(routing_warnings(config, settings.DATABASES))
    return messages


def routing_warnings(config: RoutingConfig, databases: dict[str, Any]) -> list[CheckMessage]:
    """dataflow.W102-W104 for a valid setting: what works but will hurt."""
    messages: list[CheckMessage] = []
    for dbset in config.sets.values():
        claimed = any(route.dbset is dbset for route in config.claims.values())
        if dbset.primary != DEFAULT_DB_ALIAS and not claimed:
            messages.append(
                Warning(
                    f"{SETTING}[{dbset.primary!r}] claims no apps or models, so the router "
                    "sends nothing there.",
                    hint="List the apps or models stored there under 'apps' / 'models'.",
                    id="dataflow.W104",
                )
            )
        for alias in dbset.replicas:
            entry = databases[alias]
            if (entry.get("TEST") or {}).get("MIRROR") != dbset.primary:
                messages.append(
                    Warning(
                        f"The replica {alias!r} is not a test mirror of {dbset.primary!r}; "
                        "tests would create a database of its own on it.",
                        hint=f'Add "TEST": {{"MIRROR": "{dbset.primary}"}} to '
                        f"DATABASES[{alias!r}].",
                        id="dataflow.W102",
                    )
                )
            options = entry.get("OPTIONS") or {}
            if "sqlite" not in entry.get("ENGINE", "") and "connect_timeout" not in options:
                messages.append(
                    Warning(
                        f"The replica {alias!r} has no OPTIONS['connect_timeout']: an "
                        "unreachable host can hold a read for minutes before it falls back.",
                        hint='Set DATABASES[alias]["OPTIONS"]["connect_timeout"], e.g. 2.',
                        id="dataflow.W103",
                    )
                )
    return messages
