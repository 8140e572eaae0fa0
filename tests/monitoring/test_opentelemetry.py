"""OpenTelemetry metrics (``DATAFLOW_OPENTELEMETRY``): every ``db.client.connection.*``
instrument of a real pool under load, read with the SDK's in-memory reader, equals the
pool's statistics (``get_pool_stats()``); with the setting off nothing is created; a
missing opentelemetry-api is a system-check error.

The instruments go on a MeterProvider of the test's own (``install(meter_provider=...)``):
the global provider is never set.
"""

from __future__ import annotations

import builtins
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connections
from django.test import override_settings

from django_dataflow import apps as dataflow_apps
from django_dataflow import conf
from django_dataflow.checks import pool as pool_checks
from django_dataflow.monitoring import observations
from django_dataflow.pool import registry
from django_dataflow.pool.errors import PoolTimeoutError
from django_dataflow.pool.stats import USE_BUCKETS, WAIT_BUCKETS, bucket_key
from django_dataflow.stats import get_pool_stats
from tests.testapp.models import Item

pytest.importorskip("opentelemetry.sdk.metrics")
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from django_dataflow.monitoring import opentelemetry as otel

ROOT = Path(__file__).resolve().parents[2]
GAUGE_NAMES = (
    "db.client.connection.count",
    "db.client.connection.idle.max",
    "db.client.connection.idle.min",
    "db.client.connection.max",
    "db.client.connection.pending_requests",
    "db.client.connection.timeouts",
)
HISTOGRAM_NAMES = (
    "db.client.connection.create_time",
    "db.client.connection.wait_time",
    "db.client.connection.use_time",
)
UNITS = {
    "db.client.connection.count": "{connection}",
    "db.client.connection.idle.max": "{connection}",
    "db.client.connection.idle.min": "{connection}",
    "db.client.connection.max": "{connection}",
    "db.client.connection.pending_requests": "{request}",
    "db.client.connection.timeouts": "{timeout}",
    **dict.fromkeys(HISTOGRAM_NAMES, "s"),
}


@pytest.fixture
def reader():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    otel.install(meter_provider=provider)
    yield reader
    otel.uninstall()
    provider.shutdown()


def collect(reader) -> dict:
    """name -> {frozenset(attributes): data point} of our meter's metrics."""
    found: dict = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            if scope.scope.name != "django_dataflow":
                continue
            for metric in scope.metrics:
                assert metric.unit == UNITS[metric.name], metric.name
                found[metric.name] = {
                    frozenset(point.attributes.items()): point for point in metric.data.data_points
                }
    return found


def point(metrics: dict, name: str, vendor: str, alias: str = "default", **extra: str):
    attributes = {"db.client.connection.pool.name": alias, "db.system.name": vendor, **extra}
    return metrics[name][frozenset(attributes.items())]


def check_gauges(metrics: dict, stats: dict, vendor: str) -> None:
    def value(name: str, **extra: str) -> int:
        return point(metrics, name, vendor, **extra).value

    assert (
        value("db.client.connection.count", **{"db.client.connection.state": "used"})
        == (stats["checked_out"])
    )
    assert (
        value("db.client.connection.count", **{"db.client.connection.state": "idle"})
        == (stats["idle_connections"])
    )
    assert value("db.client.connection.idle.max") == stats["pool_size"]
    assert value("db.client.connection.idle.min") == 0
    assert value("db.client.connection.max") == stats["max_connections"]
    assert value("db.client.connection.pending_requests") == stats["wait_queue"]
    assert value("db.client.connection.timeouts") == stats["timeouts"]


def check_histograms(metrics: dict, stats: dict, vendor: str) -> None:
    def cumulative(histogram, bounds):
        result, running = {}, 0
        for bound, count in zip(histogram.explicit_bounds, histogram.bucket_counts, strict=False):
            running += count
            result[bound] = running
        return [result[bound] for bound in bounds]

    waits = point(metrics, "db.client.connection.wait_time", vendor)
    served_at_once = stats["checkouts"] + stats["timeouts"] - stats["waits"]
    assert waits.count == stats["checkouts"] + stats["timeouts"]
    assert waits.bucket_counts[0] == served_at_once  # the bucket of 0
    queued = [count + served_at_once for count in _pool_buckets(stats, "wait_time", WAIT_BUCKETS)]
    assert cumulative(waits, WAIT_BUCKETS) == queued
    assert math.isclose(waits.sum, stats["wait_time_avg"] * stats["waits"], abs_tol=1e-9)

    uses = point(metrics, "db.client.connection.use_time", vendor)
    assert uses.count == stats["uses"] == stats["checkins"]
    assert cumulative(uses, USE_BUCKETS) == _pool_buckets(stats, "use_time", USE_BUCKETS)
    assert math.isclose(uses.sum, stats["use_time_total"], rel_tol=1e-9)

    creates = point(metrics, "db.client.connection.create_time", vendor)
    assert creates.count == stats["connect_time_count"] == stats["connections_created"] > 0
    assert cumulative(creates, WAIT_BUCKETS) == _pool_buckets(stats, "connect_time", WAIT_BUCKETS)
    assert math.isclose(creates.sum, stats["connect_time_total"], rel_tol=1e-9)


def _pool_buckets(stats: dict, prefix: str, bounds: tuple[float, ...]) -> list[int]:
    return [stats[bucket_key(prefix, bound)] for bound in bounds]


@pytest.mark.django_db(transaction=True)
def test_every_instrument_equals_the_pool_under_load(reader, vendor):
    Item.objects.create(name="warm")
    connections.close_all()
    stats = get_pool_stats()
    holders = int(stats["max_connections"])
    threads_count = holders + 2
    release = threading.Event()
    errors: list[BaseException] = []

    def borrower(index: int) -> None:
        try:
            for round_ in range(6):
                Item.objects.filter(name=f"{index}-{round_}").count()
                if round_ == 0:
                    release.wait(30)
                else:
                    time.sleep(0.002 * (index % 3))
                connections["default"].close()
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=borrower, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 20
        while (stats := get_pool_stats())["checked_out"] < holders or stats["wait_queue"] < 2:
            assert time.monotonic() < deadline, stats
            time.sleep(0.01)
        # Every connection is lent and two borrowers queue: one more times out.
        pool = registry.all_pools("default")[0]
        with pytest.raises(PoolTimeoutError):
            pool.checkout(timeout=0.05)

        busy = collect(reader)
        stats = get_pool_stats()
        assert set(busy) == {*GAUGE_NAMES, *HISTOGRAM_NAMES}
        assert stats["checked_out"] == holders and stats["wait_queue"] == 2
        check_gauges(busy, stats, vendor)
        check_histograms(busy, stats, vendor)
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    assert not errors, errors

    metrics = collect(reader)
    stats = get_pool_stats()
    assert stats["checkouts"] >= 1 + threads_count * 6
    assert stats["timeouts"] == 1 and stats["waits"] >= 3
    check_gauges(metrics, stats, vendor)
    check_histograms(metrics, stats, vendor)
    for name in (*GAUGE_NAMES, *HISTOGRAM_NAMES):
        for attributes in metrics[name]:
            assert dict(attributes)["db.system.name"] == vendor
            assert dict(attributes)["db.client.connection.pool.name"] in ("default", "other")


@pytest.mark.django_db(transaction=True)
def test_a_retired_pool_keeps_its_counts(reader, vendor):
    Item.objects.count()
    connections.close_all()
    first = collect(reader)
    before = get_pool_stats()
    registry.close_pools()  # the pool goes: its alias keeps what it counted
    Item.objects.count()
    connections.close_all()
    metrics = collect(reader)
    after = get_pool_stats()

    uses = point(metrics, "db.client.connection.use_time", vendor).count
    assert uses == before["uses"] + after["uses"]
    assert point(first, "db.client.connection.use_time", vendor).count == before["uses"]
    assert point(metrics, "db.client.connection.timeouts", vendor).value == 0
    check_gauges(metrics, after, vendor)


@pytest.mark.django_db(transaction=True)
def test_an_alias_without_a_pool_reports_its_sizes(reader, vendor):
    metrics = collect(reader)
    stats = get_pool_stats("other")
    assert (
        point(metrics, "db.client.connection.max", vendor, alias="other").value
        == (stats["max_connections"])
    )
    assert "other" not in {
        dict(attributes)["db.client.connection.pool.name"]
        for attributes in metrics.get("db.client.connection.use_time", {})
    }


@pytest.mark.unit
def test_off_nothing_is_installed(monkeypatch):
    calls = []
    monkeypatch.setattr(otel, "install", lambda *args, **kwargs: calls.append(args))
    with override_settings(DATAFLOW_OPENTELEMETRY=False):
        assert dataflow_apps.install_opentelemetry() is False
    with override_settings():
        assert dataflow_apps.install_opentelemetry() is False  # the default
    assert calls == []
    with override_settings(DATAFLOW_OPENTELEMETRY="yes"):  # E011 says why
        assert dataflow_apps.install_opentelemetry() is False
    assert calls == []
    with override_settings(DATAFLOW_OPENTELEMETRY=True):
        assert dataflow_apps.install_opentelemetry() is True
    assert calls == [()]


SETUP_PROBE = """
import sys
import django
from django.conf import settings
from tests.dbsettings import sqlite
names = {name: getattr(sqlite, name) for name in dir(sqlite) if name.isupper()}
settings.configure(**names, DATAFLOW_OPENTELEMETRY=sys.argv[1] == "on")
django.setup()
from django_dataflow.pool import registry
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"
                or m == "django_dataflow.monitoring.opentelemetry")
installed = sys.modules.get("django_dataflow.monitoring.opentelemetry")
print(bool(loaded), installed is not None and installed.installed() is not None)
"""


@pytest.mark.unit
@pytest.mark.parametrize(("setting", "expected"), [("off", "False False"), ("on", "True True")])
def test_django_setup_imports_opentelemetry_only_when_on(setting, expected):
    result = subprocess.run(
        [sys.executable, "-c", SETUP_PROBE, setting],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.unit
def test_a_wrong_value_is_named(settings):
    settings.DATAFLOW_OPENTELEMETRY = "yes"
    problems = conf.settings_problems()
    assert any(
        problem.startswith("settings.DATAFLOW_OPENTELEMETRY must be True or False")
        for problem in problems
    )
    assert pool_checks.check_opentelemetry() == []  # E011's, not E013's


@pytest.mark.unit
def test_the_check_names_the_fix_when_opentelemetry_is_missing(settings, monkeypatch):
    real_import = builtins.__import__

    def without_opentelemetry(name, *args, **kwargs):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    settings.DATAFLOW_OPENTELEMETRY = True
    assert pool_checks.check_opentelemetry() == []
    for name in [name for name in sys.modules if name.startswith("opentelemetry")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", without_opentelemetry)

    [error] = pool_checks.check_opentelemetry()
    assert error.id == "dataflow.E013"
    assert "DATAFLOW_OPENTELEMETRY" in error.msg and "opentelemetry-api" in error.msg
    assert 'pip install "django-dataflow[opentelemetry]"' in error.hint
    settings.DATAFLOW_OPENTELEMETRY = False
    assert pool_checks.check_opentelemetry() == []


@pytest.mark.unit
def test_replayed_values_fall_in_their_buckets_and_add_up():
    bounds = (0.01, 0.1, 1.0)
    pairs = observations.synthesize([2, 0, 3, 1], 2 * 0.004 + 3 * 0.5 + 4.0, bounds)
    values = [value for value, count in pairs for _ in range(count)]
    assert len(values) == 6
    assert sum(1 for value in values if value <= 0.01) == 2
    assert sum(1 for value in values if 0.1 < value <= 1.0) == 3
    assert sum(1 for value in values if value > 1.0) == 1
    assert math.isclose(sum(values), 2 * 0.004 + 3 * 0.5 + 4.0)
    # Without values above the last bound, the buckets take the whole sum.
    pairs = observations.synthesize([1, 1, 0, 0], 0.005 + 0.05, bounds)
    assert math.isclose(sum(value * count for value, count in pairs), 0.055)
    assert [count for _value, count in pairs] == [1, 1]
    assert pairs[0][0] <= 0.01 < pairs[1][0] <= 0.1
    assert observations.synthesize([0, 0, 0, 0], 0.0, bounds) == []
