"""DataFlowRouter: reads to replicas, writes to primaries, analytics to their own database.

The DataFlow guide's connection strategies — a read replica pool, a write master pool,
an analytics pool — as a Django database router. Add it to ``DATABASE_ROUTERS`` and
describe the databases in ``DATAFLOW_ROUTING`` (see ``routing/config.py`` and
docs/routing.md). Each alias keeps its own ``POOL``.

A read goes, in this order of precedence, to:

1. the alias of an enclosing ``use_database(alias)``;
2. the analytics alias, for the set's analytics models (their data lives only there);
3. the analytics alias inside ``use_analytics()``;
4. the primary inside ``use_primary()``;
5. a replica inside ``use_replica()``;
6. the primary after a write to it in this request or task, while the middleware's
   cookie pins the client, or inside ``atomic()`` on the primary;
7. otherwise a replica chosen by weight — kept for the rest of the request — among the
   usable ones (``routing/health.py``), and the primary when none is usable.

In 5 and 7, a replica with an open ``atomic()`` block comes first: the block's reads
share its snapshot.

While the Debug Toolbar's panel traces a request, each read's decision and its reason
are recorded too (``routing/explain.py``); otherwise that costs one global read.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from django.core.signals import setting_changed
from django.db import connections

from django_dataflow.backends import tracing
from django_dataflow.routing import config as routing_config
from django_dataflow.routing import context as routing
from django_dataflow.routing import explain
from django_dataflow.routing.config import ANALYTICS, PRIMARY, DatabaseSet, get_config
from django_dataflow.routing.health import health

logger = logging.getLogger("django_dataflow.routing")

ROUTER_PATH = "django_dataflow.routers.DataFlowRouter"
# The documented path, and where the class lives.
ROUTER_PATHS = (ROUTER_PATH, "django_dataflow.routing.router.DataFlowRouter")


class DataFlowRouter:
    """The database router of django-dataflow; configured by ``DATAFLOW_ROUTING``."""

    def __init__(self) -> None:
        connect_receivers()

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        if tracing.active and not explain.explaining():  # the Debug Toolbar's panel
            return explain.traced_read(self, model, hints)
        override = routing.current_override()
        if override is not None and override.target == routing.DATABASE:
            return override.alias
        config = get_config()
        route = config.route(model) if config is not None else None
        if route is None:
            return None
        dbset = route.dbset
        if route.analytics:
            return dbset.analytics
        target = override.target if override is not None else None
        if target == routing.ANALYTICS and dbset.analytics is not None:
            return dbset.analytics
        if target == routing.PRIMARY or not dbset.replicas:
            return dbset.primary
        scope = routing.current_scope()
        if target != routing.REPLICA and (
            (scope is not None and scope.pins(dbset.primary))
            or connections[dbset.primary].in_atomic_block
        ):
            return dbset.primary
        return pick_replica(dbset, scope)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        override = routing.current_override()
        config = get_config()
        if override is not None and override.target == routing.DATABASE:
            alias = override.alias
            if config is not None and alias in config.sets:
                routing.note_write(alias)
            return alias
        route = config.route(model) if config is not None else None
        if route is None:
            return None
        if route.analytics:
            return route.dbset.analytics
        routing.note_write(route.dbset.primary)
        return route.dbset.primary

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        """Objects may be related when their databases hold the same data: a primary,
        its replicas (and a mirror analytics alias)."""
        config = get_config()
        db1, db2 = obj1._state.db, obj2._state.db
        if config is None or db1 is None or db2 is None:
            return None
        group1, group2 = config.group_of(db1), config.group_of(db2)
        if group1 is None or group2 is None:
            return None
        return group1 == group2

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        """Tables are made on primaries (replicas are copies of them), and the set's
        analytics models on its analytics database when that is not a mirror."""
        config = get_config()
        role = config.role_of(db) if config is not None else None
        if role is None:
            return None
        assert config is not None  # a role comes from a config
        kind, _dbset = role
        if kind not in (PRIMARY, ANALYTICS):
            return False  # a replica
        # By labels: migrations pass historical model classes, new ones every time.
        route = config.route_labels(app_label, model_name)
        if route is None:
            return False
        if kind == PRIMARY:
            return route.dbset.primary == db and not route.analytics
        return route.analytics and route.dbset.analytics == db


def pick_replica(dbset: DatabaseSet, scope: routing.RoutingScope | None) -> str:
    """A usable replica of ``dbset`` by weight (the scope's earlier choice while it stays
    usable), or the primary when none is. Inside an ``atomic()`` block on one of the
    replicas, that replica: the block's reads share its snapshot."""
    for alias in dbset.replicas:
        if connections[alias].in_atomic_block:
            return alias
    chosen = scope.replicas.get(dbset.primary) if scope is not None else None
    if chosen is not None and health.usable(chosen, dbset):
        return chosen
    candidates = [
        (alias, weight)
        for alias, weight in zip(dbset.replicas, dbset.weights, strict=True)
        if alias != chosen and weight > 0
    ]
    while candidates:
        index = _weighted_index([weight for _, weight in candidates])
        alias = candidates.pop(index)[0]
        if health.usable(alias, dbset):
            return _remember(scope, dbset, alias)
    # Weight 0: only when every weighted replica is unusable.
    for alias, weight in zip(dbset.replicas, dbset.weights, strict=True):
        if weight == 0 and alias != chosen and health.usable(alias, dbset):
            return _remember(scope, dbset, alias)
    if scope is not None:
        scope.replicas.pop(dbset.primary, None)
    logger.debug("No replica of %r is usable; reading from the primary.", dbset.primary)
    return dbset.primary


def _weighted_index(weights: list[float]) -> int:
    return random.choices(range(len(weights)), weights)[0]


def _remember(scope: routing.RoutingScope | None, dbset: DatabaseSet, alias: str) -> str:
    if scope is not None:
        scope.replicas[dbset.primary] = alias
    return alias


def _clear_health(setting: str, **kwargs: Any) -> None:
    if setting in ("DATABASES", "DATAFLOW_ROUTING"):
        health.reset()


def connect_receivers() -> None:
    """Connect what the router needs (idempotent): a routing scope per request and per
    Celery task, and the caches cleared when the settings change. Called from
    AppConfig.ready() and when Django builds the router, for a project that lists the
    router without installing the app."""
    setting_changed.connect(_clear_health, dispatch_uid="django_dataflow.routers.health")
    routing_config.connect_receivers()
    routing.connect_signals()
