"""This process's pools at one metrics collection: statistics per alias, and the
histogram observations made since the previous collection.

Why it exists: OpenTelemetry (``monitoring/opentelemetry.py``) has no observable
histogram, so a histogram is fed value by value. The pools already count their checkout
waits, uses and connects in buckets (``pool/stats.py``, what Prometheus exports); so
the request path gets no second hook. Instead, at each collection, what each pool's
histograms gained since the previous collection is *replayed*: as many values as each
bucket gained, each value inside its bucket, chosen so that together they add up to the
seconds the pool added. Exported with the pool's own bucket bounds, the result has the
pool's exact count, buckets and sum; a value on its own (and so min, max, or the buckets
of a View with other bounds) is known only to within its bucket.

Nothing here imports OpenTelemetry: it reads the pools the way ``get_pool_stats()`` does.
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from django_dataflow import stats as public_stats
from django_dataflow.pool import registry
from django_dataflow.pool.pool import ConnectionPool
from django_dataflow.pool.stats import USE_BUCKETS, WAIT_BUCKETS, bucket_key
from django_dataflow.settings.engines import pooled_entries

# A value just above its bucket's lower bound (bounds are exclusive below, as ``le``).
LOW = 1e-6


@dataclass(frozen=True)
class HistogramSource:
    """Where one histogram of the pool's statistics is: its buckets, count and sum."""

    prefix: str
    bounds: tuple[float, ...]
    count_key: str
    sum_key: str  # "" when the sum is wait_time_avg * waits

    def counts(self, stats: Mapping[str, Any]) -> list[int]:
        """Observations per bucket, not cumulative; the last one is above every bound."""
        cumulative = [int(stats.get(bucket_key(self.prefix, bound), 0)) for bound in self.bounds]
        cumulative.append(int(stats.get(self.count_key, 0)))
        return [now - before for now, before in zip(cumulative, [0, *cumulative[:-1]], strict=True)]

    def total(self, stats: Mapping[str, Any]) -> float:
        if self.sum_key:
            return float(stats.get(self.sum_key, 0.0))
        return float(stats.get("wait_time_avg", 0.0)) * int(stats.get("waits", 0))


# The OpenTelemetry name of each histogram, and where the pool keeps it.
HISTOGRAMS = {
    "wait_time": HistogramSource("wait_time", WAIT_BUCKETS, "wait_time_count", ""),
    "use_time": HistogramSource("use_time", USE_BUCKETS, "uses", "use_time_total"),
    "create_time": HistogramSource(
        "connect_time", WAIT_BUCKETS, "connect_time_count", "connect_time_total"
    ),
}


def synthesize(
    added: list[int], added_seconds: float, bounds: tuple[float, ...]
) -> list[tuple[float, int]]:
    """``(value, how many)`` pairs: ``added[i]`` values inside bucket ``i`` (the last
    bucket is above ``bounds[-1]``), adding up to ``added_seconds`` when that is
    possible (it is, unless the pool was read between a count and its sum)."""
    added = [max(0, count) for count in added]
    lows = (0.0, *bounds[:-1])
    finite = [
        (count, low, high) for count, low, high in zip(added, lows, bounds, strict=False) if count
    ]
    above = added[-1]
    base = sum(count * low for count, low, _high in finite)
    width = sum(count * (high - low) for count, low, high in finite)
    # Every bucket's values sit at the same fraction of the bucket; values above the last
    # bound take what is left of the sum.
    floor = math.nextafter(bounds[-1], math.inf)
    fraction = 0.5 if above else 1.0
    if width:
        fraction = (added_seconds - base - above * floor) / width
        fraction = min(0.5 if above else 1.0, max(LOW, fraction))
    pairs = [(low + fraction * (high - low), count) for count, low, high in finite]
    if above:
        pairs.append((max(floor, (added_seconds - base - fraction * width) / above), above))
    return pairs


def served_at_once(stats: Mapping[str, Any]) -> int:
    """Checkouts that did not queue, so far: the ``wait_time`` observations of 0."""
    return sum(int(stats.get(key, 0)) for key in ("checkouts", "timeouts")) - int(
        stats.get("waits", 0)
    )


def replay(
    before: Mapping[str, Any] | None, now: Mapping[str, Any], zeros: int = 0
) -> tuple[dict[str, list[tuple[float, int]]], int]:
    """The observations of each histogram between two statistics of one pool (``before``
    None: since the pool was made), and the zeros of ``wait_time`` recorded so far.

    ``wait_time`` follows OpenTelemetry's meaning, the time it took to obtain a
    connection: the pool's histogram holds the checkouts that queued, and each checkout
    served at once is recorded as 0, so the count is the checkouts plus the timeouts.
    (A checkout handed to a waiter is counted a moment before its wait: a collection in
    between may record one 0 too many. ``zeros`` keeps the running total, so that no
    more follow for it.)
    """
    before = before or {}
    result = {}
    for name, source in HISTOGRAMS.items():
        added = [
            count - earlier
            for count, earlier in zip(source.counts(now), source.counts(before), strict=True)
        ]
        result[name] = synthesize(added, source.total(now) - source.total(before), source.bounds)
    new_zeros = served_at_once(now) - zeros
    if new_zeros > 0:
        result["wait_time"].insert(0, (0.0, new_zeros))
        zeros += new_zeros
    return result, zeros


@dataclass
class Pools:
    """One collection's reading: the statistics per alias (``get_pool_stats()``'s), the
    vendor of each alias, and the histogram observations per alias since the last."""

    stats: dict[str, dict[str, Any]]
    vendors: dict[str, str]
    observations: dict[str, dict[str, list[tuple[float, int]]]]
    # Timeouts of the alias's pools that are gone (retired, closed): the counter of an
    # alias never goes down.
    retired_timeouts: Counter[str]


class PoolReader:
    """Reads this process's pools, remembering what each had at the previous reading."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forget()

    def _forget(self) -> None:
        self._pid = os.getpid()
        # Each pool's statistics at the previous reading, and its wait_time zeros so far.
        self._seen: dict[ConnectionPool, tuple[dict[str, Any], int]] = {}
        self._retired_timeouts: Counter[str] = Counter()

    def read(self) -> Pools:
        with self._lock:
            if os.getpid() != self._pid:
                # A forked child: the parent's pools are not ours (the registry forgot them).
                self._forget()
            vendors = {alias: vendor for alias, vendor, _ in pooled_entries(settings.DATABASES)}
            live = registry.all_pools()
            per_alias: dict[str, list[dict[str, Any]]] = {}
            observations: dict[str, dict[str, list[tuple[float, int]]]] = {}
            gone = [pool for pool in self._seen if pool not in live]
            for pool in [*live, *gone]:
                engine_stats = pool.get_stats()
                before, zeros = self._seen.get(pool, (None, 0))
                pairs, zeros = replay(before, engine_stats, zeros)
                for name, values in pairs.items():
                    observations.setdefault(pool.name, {}).setdefault(name, []).extend(values)
                vendors.setdefault(pool.name, pool.vendor)
                if pool in gone:
                    del self._seen[pool]
                    self._retired_timeouts[pool.name] += int(engine_stats.get("timeouts", 0))
                else:
                    self._seen[pool] = (engine_stats, zeros)
                    per_alias.setdefault(pool.name, []).append(engine_stats)
            stats = {
                alias: public_stats.combine(public_stats.from_engine(s) for s in parts)
                for alias, parts in per_alias.items()
            }
            for alias in vendors:
                if alias not in stats and (configured := _configured(alias)) is not None:
                    stats[alias] = configured
            return Pools(
                stats,
                vendors,
                observations,
                Counter(self._retired_timeouts),
            )


def _configured(alias: str) -> dict[str, Any] | None:
    """The statistics of an alias without a pool: its configured sizes (None when its
    entry is wrong; the system checks say why)."""
    try:
        return public_stats.get_pool_stats(alias)
    except Exception:
        return None
