"""Wait, use and connect time histograms: counted by a real pool, carried across
processes, and exposed under the same names by ``pool_stats --format prometheus`` and
the metrics view, with ``alias`` and ``vendor`` labels."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from django_dataflow.pool import ConnectionPool
from django_dataflow.pool.stats import USE_BUCKETS, WAIT_BUCKETS, bucket_key
from tests.pool.connectors import SQLiteFileConnector


@pytest.fixture
def pool(tmp_path):
    pools = []

    def make(**options):
        options.setdefault("pre_ping", False)
        made = ConnectionPool(SQLiteFileConnector(tmp_path / "h.sqlite3"), name="h", **options)
        pools.append(made)
        return made

    yield make
    for made in pools:
        made.close()


def buckets(stats, prefix, bounds):
    return [stats[bucket_key(prefix, bound)] for bound in bounds]


def test_waits_and_uses_of_a_pool_under_load(pool):
    tiny = pool(pool_size=1, max_overflow=0, timeout=10)

    def borrow():
        for _ in range(3):
            record = tiny.checkout()
            record.connection.execute("SELECT 1")
            time.sleep(0.02)
            tiny.checkin(record, record.lease)

    with ThreadPoolExecutor(4) as executor:
        for future in [executor.submit(borrow) for _ in range(4)]:
            future.result()
    stats = tiny.get_stats()

    assert stats["waits"] > 0
    assert stats["wait_time_count"] == stats["waits"]
    waits = buckets(stats, "wait_time", WAIT_BUCKETS)
    assert waits == sorted(waits) and waits[-1] <= stats["waits"]
    assert waits[0] < stats["waits"]  # a 20 ms hold makes waits longer than 1 ms
    assert stats["uses"] == stats["checkins"] == 12
    uses = buckets(stats, "use_time", USE_BUCKETS)
    assert uses[USE_BUCKETS.index(0.01)] == 0 and uses[-1] == 12  # each held ~20 ms
    assert 12 * 0.02 <= stats["use_time_total"] < 12 * 0.5
    assert stats["connect_time_count"] == stats["connections_created"] == 1


def test_a_parked_stretch_is_not_use(pool):
    parking = pool(pool_size=2, thread_affinity=True)
    record = parking.checkout()
    time.sleep(0.02)
    assert parking.park(record, record.lease)
    time.sleep(0.2)  # parked: idle for everybody, not use
    parking.give_back_parked(record, record.lease)
    stats = parking.get_stats()

    assert stats["checkins"] == stats["uses"] == 1
    assert 0.02 <= stats["use_time_total"] < 0.15

    again = parking.checkout()
    assert parking.park(again, again.lease)
    assert parking.unpark(again, again.lease)
    parking.checkin(again, again.lease)
    assert parking.get_stats()["uses"] == parking.get_stats()["checkins"] == 3


pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from django_dataflow.monitoring import views  # noqa: E402


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(family, name, **labels):
    for sample in family.samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    raise KeyError((name, labels))


@pytest.mark.django_db(transaction=True)
def test_the_command_and_the_view_expose_the_same_histograms(
    spawn_worker, pool_stats, stats_dir, settings, vendor
):
    spawn_worker(requests=5, hold=1)
    spawn_worker(requests=3, hold=0)
    result = pool_stats("--format", "prometheus")
    assert result.returncode == 0, result.stderr
    command = families(result.stdout)
    settings.DATAFLOW_STATS_DIR = str(stats_dir)
    settings.DATAFLOW_METRICS_TOKEN = "t0ken"
    request = RequestFactory().get("/", headers={"Authorization": "Bearer t0ken"})
    request.user = AnonymousUser()
    response = views.metrics_view(request)
    assert response.status_code == 200
    view = families(response.content.decode())

    assert set(command) == set(view)
    for name in ("wait_time_seconds", "use_time_seconds", "connect_time_seconds"):
        family = command[f"django_dataflow_{name}"]
        assert family.type == "histogram"
        assert {s.labels["vendor"] for s in family.samples} == {vendor}
        assert {s.labels["alias"] for s in family.samples} == {"default"}
    for family in command.values():
        for sample in family.samples:
            assert sample.labels["alias"] == "default" and sample.labels["vendor"] == vendor
    uses = command["django_dataflow_use_time_seconds"]
    checkins = value(command["django_dataflow_checkins"], "django_dataflow_checkins_total")
    assert value(uses, "django_dataflow_use_time_seconds_count") == checkins > 0
    assert value(uses, "django_dataflow_use_time_seconds_bucket", le="+Inf") == checkins
    assert value(uses, "django_dataflow_use_time_seconds_sum") > 0
    created = value(
        command["django_dataflow_connections_created"], "django_dataflow_connections_created_total"
    )
    connects = command["django_dataflow_connect_time_seconds"]
    assert value(connects, "django_dataflow_connect_time_seconds_count") == created
