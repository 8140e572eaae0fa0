"""PoolPanel: a Django Debug Toolbar panel with the pooled connections of one request.

Add ``"django_dataflow.debug_toolbar.PoolPanel"`` to ``DEBUG_TOOLBAR_PANELS`` (see
docs/debug-toolbar.md). For the request the toolbar shows, it lists each alias used:
its checkouts (a new connection, an idle one of the pool reused, or the thread's parked
one taken back), the time spent getting each connection and holding it, the router's
decision and reason for each read, and the alias's pool when the response was ready.

It costs nothing while the toolbar is off, or the panel toggled off: the toolbar then
does not call ``process_request``, no trace is opened, ``tracing.active`` stays 0 and
the backends and the router skip their tracing (``backends/tracing.py``). The panel
shows counts, times, alias names and pool sizes; never connection parameters.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from contextlib import ExitStack
from inspect import iscoroutine
from typing import Any

from debug_toolbar.panels import Panel
from django.db import connections
from django.utils.connection import ConnectionDoesNotExist

from django_dataflow.backends import tracing
from django_dataflow.stats import get_pool_stats

# What the panel shows of an alias's pool (``get_pool_stats()``), with its labels.
POOL_FIELDS = (
    ("pool_size", "pool_size"),
    ("overflow_max", "max overflow"),
    ("total", "open connections"),
    ("checked_out", "checked out"),
    ("idle_connections", "idle"),
    ("overflow", "overflow in use"),
    ("wait_queue", "waiting now"),
    ("checkouts", "checkouts (since the pool started)"),
    ("waits", "checkouts that waited"),
    ("timeouts", "timeouts"),
    ("wait_time_max", "longest wait (s)"),
)
HOW = (tracing.NEW, tracing.REUSED, tracing.PARKED)


def milliseconds(seconds: float) -> float:
    return round(max(0.0, seconds) * 1000.0, 3)


def pool_state(alias: str) -> list[dict[str, Any]]:
    """The alias's pool in this process, as ``key``, ``label``, ``value`` rows (none for
    an alias without a pool of ours). Numbers only: no connection parameter."""
    try:
        stats = get_pool_stats(alias)
    except (ValueError, ConnectionDoesNotExist):
        return []
    rows = []
    for key, label in POOL_FIELDS:
        value = stats.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = round(value, 4) if isinstance(value, float) else int(value)
            rows.append({"key": key, "label": label, "value": number})
    return rows


def _alias_entry(alias: str, vendor: str) -> dict[str, Any]:
    return {
        "alias": alias,
        "vendor": vendor,
        "checkouts": 0,
        **dict.fromkeys(HOW, 0),
        "acquire_ms": 0.0,
        "acquire_max_ms": 0.0,
        "held_ms": 0.0,
        "still_held": 0,
        "reads_routed": 0,
        "list": [],
        "pool": [],
    }


def summarize(trace: tracing.Trace, now: float) -> dict[str, Any]:
    """The panel's statistics (JSON-friendly: the toolbar stores them) of one trace."""
    aliases: dict[str, dict[str, Any]] = {}
    numbers: dict[int, int] = {}  # the record's id -> a small number for the page
    for checkout in trace.checkouts:
        entry = aliases.get(checkout.alias)
        if entry is None:
            entry = aliases[checkout.alias] = _alias_entry(checkout.alias, checkout.vendor)
        still_held = checkout.held_seconds is None
        held = now - checkout.started if still_held else checkout.held_seconds
        acquire_ms = milliseconds(checkout.acquire_seconds)
        held_ms = milliseconds(held or 0.0)
        entry["checkouts"] += 1
        entry[checkout.how] = entry.get(checkout.how, 0) + 1
        entry["acquire_ms"] += acquire_ms
        entry["acquire_max_ms"] = max(entry["acquire_max_ms"], acquire_ms)
        entry["held_ms"] += held_ms
        entry["still_held"] += still_held
        entry["list"].append(
            {
                "how": checkout.how,
                "connection": numbers.setdefault(checkout.connection_id, len(numbers) + 1),
                "acquire_ms": acquire_ms,
                "held_ms": held_ms,
                "returned_as": checkout.returned_as or "still held",
            }
        )
    routing: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for decision in trace.routing:
        alias = decision.get("alias")
        key = (str(decision.get("model")), alias, str(decision.get("reason")))
        if key in routing:
            routing[key]["count"] += 1
        else:
            routing[key] = {"model": key[0], "alias": alias, "reason": key[2], "count": 1}
        if alias is not None:
            entry = aliases.get(alias)
            if entry is None and alias in connections.settings:
                entry = aliases[alias] = _alias_entry(alias, connections[alias].vendor)
            if entry is not None:
                entry["reads_routed"] += 1
    for entry in aliases.values():
        entry["acquire_ms"] = round(entry["acquire_ms"], 3)
        entry["held_ms"] = round(entry["held_ms"], 3)
        entry["pool"] = pool_state(entry["alias"])
    summaries = list(aliases.values())
    return {
        "aliases": summaries,
        "checkouts": sum(entry["checkouts"] for entry in summaries),
        "acquire_ms": round(sum(entry["acquire_ms"] for entry in summaries), 3),
        "held_ms": round(sum(entry["held_ms"] for entry in summaries), 3),
        "routing": list(routing.values()),
        "reads_routed": len(trace.routing),
    }


class PoolPanel(Panel):
    """The pooled connections of the request: checkouts, times, routing, the pools."""

    title = "Connection pools"
    template = "django_dataflow/debug_toolbar/pool_panel.html"
    is_async = True  # the trace follows the request's context into sync_to_async

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trace: tracing.Trace | None = None

    @property
    def nav_subtitle(self) -> str:
        stats = self.get_stats()
        if not stats:
            return ""
        count = stats.get("checkouts", 0)
        plural = "" if count == 1 else "s"
        return f"{count} checkout{plural}, {stats.get('acquire_ms', 0.0):.1f} ms acquiring"

    def process_request(self, request: Any) -> Any:
        with ExitStack() as stack:
            self._trace = stack.enter_context(tracing.collect())
            response = self.get_response(request)
            if iscoroutine(response):
                # ASGI: the trace closes when the rest of the chain has run.
                return self._finish(response, stack.pop_all())
            return response

    async def _finish(self, response: Awaitable[Any], stack: ExitStack) -> Any:
        with stack:
            return await response

    def generate_stats(self, request: Any, response: Any) -> None:
        trace = self._trace if self._trace is not None else tracing.Trace()
        self.record_stats(summarize(trace, time.perf_counter()))
