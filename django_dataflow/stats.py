"""``get_pool_stats(using)``: the guide's ``db.get_pool_stats()`` for one DATABASES alias.

The engine's ``ConnectionPool.get_stats()`` describes one pool. An alias may have more
than one pool in a process (a changed NAME reaches a new pool), and ``manage.py
pool_stats`` adds up the pools of many processes, so this module owns the *public* shape
of the statistics and the one way of combining them:

* gauges (what is true now) and counters (what happened since the pool was created)
  add up; ``maxwait`` and ``wait_time_max`` take the largest; ``wait_time_avg`` is
  weighted by the number of waits;
* the PgBouncer names ops people know (``cl_active``, ``cl_waiting``, ``sv_active``,
  ``sv_idle``, ``sv_login``, ``maxwait``) sit next to the guide's names;
* the capacities (``size``, ``pool_size``, ``overflow_max``, ``max_connections``) are
  ``Capacity`` integers, so the guide's health checks (``stats["overflow"] /
  stats["overflow_max"]``) work even with ``pool_max_overflow = 0``.

Every key is documented in docs/stats.md.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from django_dataflow.pool import registry
from django_dataflow.pool.stats import PoolStats
from django_dataflow.settings.engines import pooled_vendor
from django_dataflow.settings.validation import resolve_pool_options

# Capacities: what the pools may hold. The denominators of the guide's health checks.
CAPACITY_KEYS = ("pool_size", "size", "overflow_max", "max_connections")
# What is true now; added up over pools and processes.
GAUGE_KEYS = (
    "total",
    "checked_out",
    "active_connections",
    "idle_connections",
    "connecting",
    "overflow",
    "overflow_connections",
    "wait_queue",
    "cl_active",
    "cl_waiting",
    "sv_active",
    "sv_idle",
    "sv_login",
)
# Seconds; the largest one wins.
MAX_KEYS = ("maxwait", "wait_time_max")
# Combined the same way when present (the publisher's windowed figure).
MAXIMA = frozenset((*MAX_KEYS, "recent_wait_time_max"))
# Monotonic counts since each pool was created: those the pool counts on its hot path
# (checkouts, checkins, thread reuses) and its PoolStats counters. Unknown counters
# pass through and add up too.
# The histograms of wait, use and connect time are counters that add up the same way
# (and survive exited processes): ``wait_time_le_0.005`` counts the waits of at most
# 5 ms (cumulative, as Prometheus's ``le`` buckets), ``*_count`` and ``*_total`` are
# each histogram's count and sum in seconds.
COUNTER_KEYS = (
    "checkouts",
    "checkins",
    *PoolStats.COUNTERS,
    "thread_reuses",
    *PoolStats.HISTOGRAM_COUNTERS,
)


class Capacity(int):
    """An ``int`` that may be divided by even when it is 0.

    ``used / capacity`` is the guide's way to compute a usage ratio. A capacity of 0
    (``pool_max_overflow = 0``) holds nothing, so nothing of it is used: the ratio is
    0.0 instead of a ZeroDivisionError (``inf`` if something were counted against it).
    It is an int in every other respect, and JSON-encodes as one.
    """

    __slots__ = ()

    def __rtruediv__(self, other: Any) -> Any:
        if int(self) == 0 and isinstance(other, int):
            return 0.0 if other == 0 else math.inf
        return int(other) / int(self) if isinstance(other, int) else NotImplemented

    def __repr__(self) -> str:
        return int.__repr__(self)


def from_engine(engine_stats: Mapping[str, Any]) -> dict[str, Any]:
    """The public statistics of one pool, from ``ConnectionPool.get_stats()``."""
    stats = dict(engine_stats)
    checked_out = int(stats.get("checked_out", 0))
    idle = int(stats.get("idle_connections", 0))
    total = int(stats.get("total", 0))
    # Slots reserved by borrowers that are still connecting.
    connecting = max(0, total - checked_out - idle)
    stats.update(
        connecting=connecting,
        cl_active=checked_out,
        cl_waiting=int(stats.get("wait_queue", 0)),
        sv_active=checked_out,
        sv_idle=idle,
        sv_login=connecting,
    )
    # An engine without a leak counter still knows one kind of leak.
    stats.setdefault("leaks", stats.get("reclaimed_from_dead_threads", 0))
    stats["invalidated_by_reason"] = dict(stats.get("invalidated_by_reason") or {})
    stats["pools"] = 1
    return finish(stats)


def combine(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Add up the statistics of several pools (or processes) into one dict."""
    parts = list(parts)
    combined: dict[str, Any] = dict.fromkeys((*CAPACITY_KEYS, *GAUGE_KEYS, *COUNTER_KEYS), 0)
    combined.update(dict.fromkeys(MAX_KEYS, 0.0))
    reasons: Counter[str] = Counter()
    wait_time_total = 0.0
    combined["pools"] = 0
    for part in parts:
        for key, value in part.items():
            if key in MAXIMA:
                combined[key] = max(combined.get(key, 0.0), float(value))
            elif key == "invalidated_by_reason":
                reasons.update(value)
            elif key == "wait_time_avg" or isinstance(value, bool):
                continue
            elif isinstance(value, (int, float)):  # gauges, capacities, counters
                combined[key] = combined.get(key, 0) + value
        wait_time_total += float(part.get("wait_time_avg", 0.0)) * int(part.get("waits", 0))
    waits = combined["waits"]
    combined["wait_time_avg"] = wait_time_total / waits if waits else 0.0
    combined["invalidated_by_reason"] = dict(reasons)
    return finish(combined)


def finish(stats: dict[str, Any]) -> dict[str, Any]:
    """Make the capacities ``Capacity`` ints (safe denominators)."""
    for key in CAPACITY_KEYS:
        stats[key] = Capacity(stats.get(key, 0))
    return stats


def empty_stats(pool_size: int, max_overflow: int) -> dict[str, Any]:
    """The statistics of an alias that has no pool yet: configured sizes, nothing used."""
    stats = combine([])
    stats.update(
        pool_size=pool_size,
        size=pool_size,
        overflow_max=max_overflow,
        max_connections=pool_size + max_overflow,
    )
    return finish(stats)


def usage(stats: Mapping[str, Any]) -> float:
    """``checked_out / pool_size``: the guide's "pool usage" (0.0 for an empty capacity)."""
    size = int(stats.get("pool_size", 0))
    return int(stats.get("checked_out", 0)) / size if size else 0.0


def get_pool_stats(using: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """Statistics of the pools of ``using`` in this process, in the guide's vocabulary.

    Before the alias's first connection there is no pool yet: the result then has the
    configured sizes and zeros everywhere else. For the pools of *every* process of the
    application, see ``manage.py pool_stats`` and docs/monitoring.md.

    Raises ``django.utils.connection.ConnectionDoesNotExist`` for an unknown alias and
    ValueError for an alias whose ENGINE is not one of ours.
    """
    settings_dict = connections[using].settings_dict  # raises ConnectionDoesNotExist
    vendor = pooled_vendor(settings_dict.get("ENGINE", ""))
    if vendor is None:
        raise ValueError(
            f"DATABASES[{using!r}] does not use a django_dataflow ENGINE "
            f"({settings_dict.get('ENGINE')!r}), so it has no pool statistics."
        )
    pools = registry.all_pools(using)
    if not pools:
        options = resolve_pool_options(using, vendor, settings_dict)
        return empty_stats(options["pool_size"], options["pool_max_overflow"])
    return combine(from_engine(pool.get_stats()) for pool in pools)
