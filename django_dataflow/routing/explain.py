"""Why the router sent a read where it did, for the Django Debug Toolbar's panel.

Only while a trace is open (``backends/tracing.py``; the panel opens one around the
request it shows) does ``DataFlowRouter.db_for_read`` come here; otherwise it pays one
read of ``tracing.active``. The read is still routed by the router itself, entered once
more with this context marked, so that the decision is the one it makes untraced. The
reason is then read off the state the decision was made on: the ``use_*()`` in force,
the scope's writes, pins and chosen replica, the open ``atomic()`` blocks, the health
of the replicas.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.db import connections

from django_dataflow.backends import tracing
from django_dataflow.routing import context as routing
from django_dataflow.routing.config import DatabaseSet, get_config
from django_dataflow.routing.health import health

_explaining: ContextVar[bool] = ContextVar("dataflow_explaining_a_read", default=False)


def explaining() -> bool:
    """Is this context inside ``traced_read`` (the router is routing, not tracing)?"""
    return _explaining.get()


def traced_read(router: Any, model: Any, hints: dict[str, Any]) -> str | None:
    """Route a read with ``router.db_for_read`` and add the decision to the trace."""
    override = routing.current_override()
    config = get_config()
    route = config.route(model) if config is not None else None
    scope = routing.current_scope()
    earlier = None
    if route is not None and scope is not None:
        earlier = scope.replicas.get(route.dbset.primary)
    token = _explaining.set(True)
    try:
        alias = router.db_for_read(model, **hints)
    finally:
        _explaining.reset(token)
    tracing.routed(
        {
            "model": model._meta.label,
            "alias": alias,
            "reason": reason(alias, override, route, scope, earlier),
        }
    )
    return alias


def reason(
    alias: str | None,
    override: routing.Override | None,
    route: Any,
    scope: routing.RoutingScope | None,
    earlier: str | None,
) -> str:
    """Why a read went to ``alias``, in the order ``DataFlowRouter.db_for_read`` decides."""
    if override is not None and override.target == routing.DATABASE:
        return f"use_database({override.alias!r})"
    if route is None:
        return "not routed: no DATAFLOW_ROUTING set names this model"
    dbset: DatabaseSet = route.dbset
    if route.analytics:
        return "an analytics model: its data is only there"
    target = override.target if override is not None else None
    if target == routing.ANALYTICS and dbset.analytics is not None:
        return "use_analytics()"
    if target == routing.PRIMARY:
        return "use_primary()"
    if not dbset.replicas:
        return "the set has no replicas"
    if alias == dbset.primary and target != routing.REPLICA:
        if scope is not None and dbset.primary in scope.written:
            return "read-your-writes: this request wrote to the primary"
        if scope is not None and scope.pins(dbset.primary):
            return "read-your-writes: the client is pinned by the middleware's cookie"
        if connections[dbset.primary].in_atomic_block:
            return "inside atomic() on the primary"
    prefix = "use_replica(); " if target == routing.REPLICA else ""
    if alias is not None and alias in dbset.replicas:
        if connections[alias].in_atomic_block:
            return f"{prefix}inside atomic() on this replica"
        if alias == earlier:
            return f"{prefix}the replica chosen earlier in this request"
        return f"{prefix}replica chosen by weight"
    return f"{prefix}no usable replica: {unusable(dbset)}"


def unusable(dbset: DatabaseSet) -> str:
    """What the health memory says of each replica of ``dbset``."""
    states = health.snapshot()
    parts = []
    for alias in dbset.replicas:
        state = states.get(alias)
        if state is not None and state["down"]:
            parts.append(f"{alias} down (retried in {state['retry_in']:.0f} s)")
        elif state is not None and state["lagging"]:
            lag = state["lag"]
            behind = "replication stopped" if lag is None else f"{lag:.1f} s behind"
            parts.append(f"{alias} lagging ({behind})")
        else:
            parts.append(f"{alias} unavailable for this read (its pool is exhausted)")
    return ", ".join(parts)
