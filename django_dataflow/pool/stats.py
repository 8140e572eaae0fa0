"""Counters, wait-time and use-time figures for one pool.

The pool updates them while it already holds its lock (a park records its use without
it: see ``record_use``), so they cost a dict increment, or a bisect and a list
increment for the histograms. ``snapshot()`` turns them, together with the pool's
gauges, into the guide's keys.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

# Histogram bucket upper bounds, in seconds (Prometheus ``le``). A checkout wait worth
# seeing is milliseconds to the pool_timeout (30 s by default); a use is one request's
# or one task's hold of a connection.
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
USE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)
# Key in ConnectionRecord.info: the checkout whose use a park already recorded (a park
# later turned into a checkin does not record it again).
USE_ENDED = "dataflow.use_recorded_for"


class Histogram:
    """Counts per bucket (one more for above the last bound) and their sum. One bisect
    and two additions per observation."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self, prefix: str) -> dict[str, int]:
        """``{prefix}_le_{bound}``: observations <= bound (Prometheus buckets); these
        add up over pools and processes like any counter."""
        result, running = {}, 0
        for bound, count in zip(self.bounds, self.counts[:-1], strict=True):
            running += count
            result[bucket_key(prefix, bound)] = running
        return result


def bucket_key(prefix: str, bound: float) -> str:
    return f"{prefix}_le_{bound:g}"


def bucket_keys(prefix: str, bounds: tuple[float, ...]) -> tuple[str, ...]:
    return tuple(bucket_key(prefix, bound) for bound in bounds)


class PoolStats:
    """Monotonic counters plus checkout-wait and use figures. Not thread-safe on its
    own: the pool calls it under its lock."""

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
    # Histogram counters of get_stats(): the buckets, the use count and the sums.
    HISTOGRAM_COUNTERS = (
        "wait_time_count",
        *bucket_keys("wait_time", WAIT_BUCKETS),
        "uses",
        "use_time_total",
        *bucket_keys("use_time", USE_BUCKETS),
        "connect_time_count",
        "connect_time_total",
        *bucket_keys("connect_time", WAIT_BUCKETS),
    )

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter(dict.fromkeys(self.COUNTERS, 0))
        self.invalidated_by_reason: Counter[str] = Counter()
        self.wait_time_total = 0.0
        self.wait_time_max = 0.0
        self.wait_time = Histogram(WAIT_BUCKETS)
        self.use_time = Histogram(USE_BUCKETS)
        self.connect_time = Histogram(WAIT_BUCKETS)

    def record_wait(self, seconds: float) -> None:
        self.counters["waits"] += 1
        self.wait_time_total += seconds
        if seconds > self.wait_time_max:
            self.wait_time_max = seconds
        self.wait_time.counts[bisect_left(WAIT_BUCKETS, seconds)] += 1
        self.wait_time.total += seconds

    def record_use(self, seconds: float) -> None:
        """A borrower's hold of a connection ended (checkin, or park). A park calls it
        outside the lock, from the holder's thread: under the GIL a lost increment
        needs a thread switch between two bytecodes of this line, and costs one
        observation of a histogram, never a counter of the pool's bookkeeping."""
        self.use_time.counts[bisect_left(USE_BUCKETS, seconds)] += 1
        self.use_time.total += seconds

    def record_invalidation(self, reason: str) -> None:
        self.counters["invalidated"] += 1
        self.invalidated_by_reason[reason] += 1

    def wait_time_avg(self) -> float:
        waits = self.counters["waits"]
        return self.wait_time_total / waits if waits else 0.0

    def histograms(self) -> dict[str, float]:
        """The histogram counters of get_stats() (under the pool's lock)."""
        return {
            "wait_time_count": self.wait_time.count,
            **self.wait_time.cumulative("wait_time"),
            "uses": self.use_time.count,
            "use_time_total": self.use_time.total,
            **self.use_time.cumulative("use_time"),
            "connect_time_count": self.connect_time.count,
            "connect_time_total": self.connect_time.total,
            **self.connect_time.cumulative("connect_time"),
        }
