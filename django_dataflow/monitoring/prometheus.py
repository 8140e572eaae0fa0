"""Prometheus metrics of the pools of every process (``pip install django-dataflow[prometheus]``).

``register()`` adds a collector to a prometheus_client registry. At each scrape it reads
the snapshots of *all* the application's processes (see ``aggregate.collect``), so
whichever gunicorn worker answers the scrape reports every worker's pools: no
``PROMETHEUS_MULTIPROC_DIR`` needed for these metrics, and no worker is missed.

Every metric has ``alias`` and ``vendor`` labels. Gauges add up the live processes. Counters add the
counters of processes that exited (kept in the snapshot directory), so they never go
down when a worker is recycled; Prometheus's ``rate()`` sees no false reset. The wait,
use and connect times are histograms, made of such counters (``stats.COUNTER_KEYS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )
    from prometheus_client.registry import REGISTRY, Collector
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "django_dataflow.monitoring.prometheus needs prometheus_client: "
        "pip install 'django-dataflow[prometheus]'"
    ) from error

from django_dataflow.monitoring.aggregate import Report, collect, total_counters
from django_dataflow.pool.stats import USE_BUCKETS, WAIT_BUCKETS, bucket_key

NAMESPACE = "django_dataflow"

# (metric name, statistics key, help). Gauges: live processes added up.
GAUGES = (
    ("pool_size", "pool_size", "Connections each pool keeps open (pool_size), all processes."),
    ("pool_overflow_max", "overflow_max", "Overflow connections allowed (pool_max_overflow)."),
    ("pool_max_connections", "max_connections", "pool_size + pool_max_overflow."),
    ("overflow_connections", "overflow", "Open connections beyond pool_size."),
    ("wait_queue", "wait_queue", "Borrowers waiting for a connection now (cl_waiting)."),
    ("maxwait_seconds", "maxwait", "How long the oldest waiting borrower has waited."),
    ("wait_time_max_seconds", "wait_time_max", "Longest checkout wait since pool start."),
)
# Connections by state: checked out, idle in the pool, being opened.
STATES = (("active", "checked_out"), ("idle", "idle_connections"), ("connecting", "connecting"))
# (metric name without _total, counter key, help).
COUNTERS = (
    ("checkouts", "checkouts", "Connections lent to borrowers."),
    ("checkins", "checkins", "Connections given back."),
    ("connections_created", "connections_created", "Physical connections opened."),
    ("connections_closed", "connections_closed", "Physical connections closed."),
    ("connection_errors", "connection_errors", "Failed attempts to open a connection."),
    ("connections_recycled", "recycled", "Connections replaced for reaching pool_recycle."),
    ("pre_ping_failures", "pre_ping_failures", "Idle connections found dead by the pre-ping."),
    ("checkout_timeouts", "timeouts", "Checkouts that gave up after pool_timeout (PoolTimeout)."),
    ("checkout_waits", "waits", "Checkouts that had to wait."),
    ("checkout_wait_seconds", "wait_seconds", "Seconds spent waiting, all checkouts."),
    ("connection_leaks", "leaks", "Connections reported as leaked."),
    ("overflow_closed", "overflow_closed", "Overflow connections closed after idling."),
    ("thread_reuses", "thread_reuses", "Checkouts served by the thread's own parked connection."),
)
# (metric name, statistics prefix, bounds, count key, sum key, help).
HISTOGRAMS = (
    (
        "wait_time_seconds",
        "wait_time",
        WAIT_BUCKETS,
        "wait_time_count",
        "wait_seconds",
        "Checkout waits (those that queued), seconds.",
    ),
    (
        "use_time_seconds",
        "use_time",
        USE_BUCKETS,
        "uses",
        "use_time_total",
        "How long borrowers held a connection, checkout to checkin or park, seconds.",
    ),
    (
        "connect_time_seconds",
        "connect_time",
        WAIT_BUCKETS,
        "connect_time_count",
        "connect_time_total",
        "Time to open a connection for a borrower, seconds.",
    ),
)
LABELS = ("alias", "vendor")


def histogram_buckets(
    counters: dict[str, Any], prefix: str, bounds: tuple[float, ...], count_key: str
) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs of one histogram, ``+Inf`` last."""
    buckets = [
        (f"{bound:g}", float(counters.get(bucket_key(prefix, bound), 0))) for bound in bounds
    ]
    return [*buckets, ("+Inf", float(counters.get(count_key, 0)))]


def metric_families(report: Report) -> Iterator[Any]:
    """The metric families of one report (shared by the collector and ``exposition``)."""
    aliases = list(report.aliases.values())
    labels = {alias.alias: [alias.alias, alias.vendor] for alias in aliases}

    def gauge(name: str, documentation: str, extra: tuple[str, ...] = ()):
        return GaugeMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=[*LABELS, *extra])

    processes = gauge("processes", "Live processes that have a pool for this alias.")
    for alias in aliases:
        processes.add_metric(labels[alias.alias], len(alias.processes))
    yield processes
    for name, key, documentation in GAUGES:
        family = gauge(name, documentation)
        for alias in aliases:
            family.add_metric(labels[alias.alias], float(alias.stats.get(key, 0)))
        yield family
    connections = gauge("connections", "Open connections by state.", ("state",))
    for alias in aliases:
        for state, key in STATES:
            connections.add_metric([*labels[alias.alias], state], float(alias.stats.get(key, 0)))
    yield connections

    totals = {alias.alias: total_counters(alias) for alias in aliases}
    for name, key, documentation in COUNTERS:
        family = CounterMetricFamily(
            f"{NAMESPACE}_{name}", documentation + " Includes exited processes.", labels=LABELS
        )
        for alias_name, counters in totals.items():
            family.add_metric(labels[alias_name], float(counters.get(key, 0)))
        yield family
    invalidated = CounterMetricFamily(
        f"{NAMESPACE}_connections_invalidated",
        "Connections thrown away, by reason. Includes exited processes.",
        labels=[*LABELS, "reason"],
    )
    for alias_name, counters in totals.items():
        for reason, count in sorted((counters.get("invalidated_by_reason") or {}).items()):
            invalidated.add_metric([*labels[alias_name], reason], float(count))
    yield invalidated
    for name, prefix, bounds, count_key, sum_key, documentation in HISTOGRAMS:
        histogram = HistogramMetricFamily(
            f"{NAMESPACE}_{name}", documentation + " Includes exited processes.", labels=LABELS
        )
        for alias_name, counters in totals.items():
            histogram.add_metric(
                labels[alias_name],
                histogram_buckets(counters, prefix, bounds, count_key),
                float(counters.get(sum_key, 0.0)),
            )
        yield histogram


class PoolStatsCollector(Collector):
    """Collects the pools of every process at scrape time."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Any]:
        yield from metric_families(collect(directory=self.directory))

    def describe(self) -> list[Any]:
        # The names without reading any snapshot (registration must not do I/O).
        return list(metric_families(Report(directory=Path(), generated_at=0.0, aliases={})))


class _ReportCollector(Collector):
    def __init__(self, report: Report) -> None:
        self.report = report

    def collect(self) -> Iterator[Any]:
        yield from metric_families(self.report)


_registered: dict[int, PoolStatsCollector] = {}


def register(registry: CollectorRegistry | None = None) -> PoolStatsCollector:
    """Add the pool collector to ``registry`` (prometheus_client's default one if None).

    Idempotent. With prometheus_client's multiprocess mode, call it on the registry you
    build for each scrape, next to ``MultiProcessCollector``.
    """
    registry = REGISTRY if registry is None else registry
    key = id(registry)
    if key not in _registered:
        collector = PoolStatsCollector()
        registry.register(collector)
        _registered[key] = collector
    return _registered[key]


def exposition(report: Report) -> bytes:
    """The Prometheus text format of ``report``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))
    return generate_latest(registry)


__all__ = ["CONTENT_TYPE_LATEST", "PoolStatsCollector", "exposition", "register"]
