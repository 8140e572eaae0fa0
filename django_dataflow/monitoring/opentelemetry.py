"""OpenTelemetry metrics of this process's pools (``pip install django-dataflow[opentelemetry]``).

The database client connection-pool instruments of OpenTelemetry's semantic conventions
(``db.client.connection.*``), each with the attributes ``db.client.connection.pool.name``
(the DATABASES alias) and ``db.system.name`` (``postgresql``, ``mysql``, ``sqlite``).
``settings.DATAFLOW_OPENTELEMETRY = True`` makes ``AppConfig.ready()`` call ``install()``.

Everything is read when a metric reader collects, never on the request path: the
gauges and the timeouts counter are observable instruments reading the pools the way
``get_pool_stats()`` does, and the three histograms get, at each collection, the
values the pools' own histograms gained since the previous one (``observations.py``
says how). Only the OpenTelemetry API is needed here; the application brings the SDK
and its exporter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "django_dataflow.monitoring.opentelemetry needs opentelemetry-api: "
        "pip install 'django-dataflow[opentelemetry]'"
    ) from error

from django_dataflow import __version__
from django_dataflow.monitoring.observations import HISTOGRAMS, PoolReader, Pools

METER_NAME = "django_dataflow"
POOL_NAME = "db.client.connection.pool.name"
SYSTEM_NAME = "db.system.name"
STATE = "db.client.connection.state"
PREFIX = "db.client.connection."

# (name, statistics key, unit, description) of the observable up-down counters read from
# the statistics of each alias; "count" has a data point per state.
GAUGES = (
    ("idle.max", "pool_size", "{connection}", "The most idle connections the pool keeps."),
    (
        "idle.min",
        None,
        "{connection}",
        "The fewest idle connections the pool keeps open (0: connections open on demand).",
    ),
    ("max", "max_connections", "{connection}", "The most open connections allowed."),
    (
        "pending_requests",
        "wait_queue",
        "{request}",
        "Checkouts waiting for a connection of the pool.",
    ),
)
STATES = (("idle", "idle_connections"), ("used", "checked_out"))
HISTOGRAM_DESCRIPTIONS = {
    "create_time": "The time it took to open a connection.",
    "wait_time": "The time a checkout waited for a connection (0 when one was free).",
    "use_time": "The time between a checkout and the connection's return to the pool.",
}


class PoolInstruments:
    """The instruments of one meter, and what they read."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        self.meter_provider = meter_provider
        self.reader = PoolReader()
        self.stopped = False
        self._lock = threading.Lock()
        self._pools: Pools | None = None
        meter = metrics.get_meter(METER_NAME, __version__, meter_provider=meter_provider)
        self.histograms = {
            name: meter.create_histogram(
                PREFIX + name,
                unit="s",
                description=HISTOGRAM_DESCRIPTIONS[name],
                # The pool's bounds; for waits, 0 too: checkouts served at once.
                explicit_bucket_boundaries_advisory=[
                    *((0.0,) if name == "wait_time" else ()),
                    *source.bounds,
                ],
            )
            for name, source in HISTOGRAMS.items()
        }
        # Created first, so its callback is the first of each collection: it reads the
        # pools and replays the histograms; the other callbacks use that reading.
        meter.create_observable_up_down_counter(
            PREFIX + "count",
            callbacks=[self._count],
            unit="{connection}",
            description="Open connections of the pool, by state (idle, used).",
        )
        for name, key, unit, description in GAUGES:
            meter.create_observable_up_down_counter(
                PREFIX + name,
                callbacks=[self._gauge(key)],
                unit=unit,
                description=description,
            )
        meter.create_observable_counter(
            PREFIX + "timeouts",
            callbacks=[self._timeouts],
            unit="{timeout}",
            description="Checkouts that gave up waiting for a connection (pool_timeout).",
        )

    # -- the reading of one collection -------------------------------------------------

    def collect(self) -> Pools | None:
        """Read the pools now and record the histograms' new values."""
        if self.stopped:
            return None
        with self._lock:
            pools = self._pools = self.reader.read()
            for alias, by_name in pools.observations.items():
                attributes = self.attributes(pools, alias)
                for name, pairs in by_name.items():
                    record = self.histograms[name].record
                    for value, count in pairs:
                        for _ in range(count):
                            record(value, attributes)
        return pools

    def latest(self) -> Pools | None:
        if self.stopped:
            return None
        return self._pools or self.collect()

    @staticmethod
    def attributes(pools: Pools, alias: str) -> dict[str, str]:
        return {POOL_NAME: alias, SYSTEM_NAME: pools.vendors.get(alias) or "other_sql"}

    def _observe(
        self, pools: Pools | None, value: Callable[[str, dict[str, Any]], int]
    ) -> Iterator[Observation]:
        if pools is None:
            return
        for alias, stats in pools.stats.items():
            yield Observation(value(alias, stats), self.attributes(pools, alias))

    # -- the callbacks -------------------------------------------------------------------

    def _count(self, options: CallbackOptions) -> Iterator[Observation]:
        pools = self.collect()
        if pools is None:
            return
        for alias, stats in pools.stats.items():
            for state, key in STATES:
                attributes = {**self.attributes(pools, alias), STATE: state}
                yield Observation(int(stats.get(key, 0)), attributes)

    def _gauge(self, key: str | None) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return self._observe(
                self.latest(), lambda alias, stats: int(stats.get(key, 0)) if key else 0
            )

        return callback

    def _timeouts(self, options: CallbackOptions) -> Iterator[Observation]:
        pools = self.latest()
        if pools is None:
            return iter(())
        return self._observe(
            pools,
            lambda alias, stats: int(stats.get("timeouts", 0)) + pools.retired_timeouts[alias],
        )


_installed: PoolInstruments | None = None
_install_lock = threading.Lock()


def install(meter_provider: MeterProvider | None = None) -> PoolInstruments:
    """Create the instruments on ``meter_provider`` (the global one by default: set it
    before or after, the API forwards to it once set). Idempotent for one provider;
    another provider (tests) replaces the instruments of the previous one."""
    global _installed
    with _install_lock:
        if _installed is not None and _installed.meter_provider is meter_provider:
            return _installed
        if _installed is not None:
            _installed.stopped = True
        _installed = PoolInstruments(meter_provider)
        return _installed


def uninstall() -> None:
    """Stop reporting: the instruments stay with their meter but observe nothing."""
    global _installed
    with _install_lock:
        if _installed is not None:
            _installed.stopped = True
        _installed = None


def installed() -> PoolInstruments | None:
    return _installed
