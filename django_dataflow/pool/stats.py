"""Counters and wait-time figures for one pool.

The pool updates them while it already holds its lock, so they cost a dict increment.
``snapshot()`` turns them, together with the pool's gauges, into the guide's keys.
"""

from __future__ import annotations

from collections import Counter


class PoolStats:
    """Monotonic counters plus checkout-wait figures. Not thread-safe on its own:
    the pool calls it under its lock."""

    # The public statistics (django_dataflow/stats.py) list these in this order.
    # (checkouts and checkins are counted by the pool itself, on its hot path.)
    COUNTERS = (
        "connections_created",
        "connections_closed",
        "connection_errors",
        "recycled",
        "invalidated",
        "overflow_closed",
        "pre_ping_failures",
        "timeouts",
        "waits",
        "leaks",
        "reclaimed_from_dead_threads",
    )

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter(dict.fromkeys(self.COUNTERS, 0))
        self.invalidated_by_reason: Counter[str] = Counter()
        self.wait_time_total = 0.0
        self.wait_time_max = 0.0

    def record_wait(self, seconds: float) -> None:
        self.counters["waits"] += 1
        self.wait_time_total += seconds
        if seconds > self.wait_time_max:
            self.wait_time_max = seconds

    def record_invalidation(self, reason: str) -> None:
        self.counters["invalidated"] += 1
        self.invalidated_by_reason[reason] += 1

    def wait_time_avg(self) -> float:
        waits = self.counters["waits"]
        return self.wait_time_total / waits if waits else 0.0
