"""get_pool_stats and the public statistics: the guide's keys, combining, safe ratios."""

from __future__ import annotations

import pytest
from django.utils.connection import ConnectionDoesNotExist

from django_dataflow.pool import ConnectionPool, registry
from django_dataflow.stats import Capacity, combine, empty_stats, from_engine, get_pool_stats
from tests.pool.connectors import SQLiteFileConnector

GUIDE_KEYS = {"size", "checked_out", "overflow", "total", "wait_queue", "overflow_max", "pool_size"}
METRICS_NODE_KEYS = {
    "active_connections",
    "idle_connections",
    "overflow_connections",
    "wait_time_avg",
    "wait_time_max",
    "connection_errors",
}
COUNTERS = {
    "checkouts",
    "connections_created",
    "recycled",
    "invalidated",
    "invalidated_by_reason",
    "timeouts",
    "leaks",
    "pre_ping_failures",
    "maxwait",
}
PGBOUNCER = {"cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_login"}


@pytest.fixture
def pool(tmp_path):
    def make(**options):
        connector = SQLiteFileConnector(tmp_path / "pool.sqlite3")
        options.setdefault("pre_ping", False)
        return ConnectionPool(connector, name="default", **options)

    return make


def guide_health_checks(stats):
    """The guide's snippets, verbatim in spirit."""
    return {
        "pool_efficiency": stats["checked_out"] / stats["size"],
        "overflow_usage": stats["overflow"] / stats["overflow_max"],
        "pool_usage": stats["active_connections"] / stats["pool_size"],
    }


def test_stats_have_the_guides_keys_the_metrics_node_names_and_the_counters(pool):
    stats = from_engine(pool().get_stats())

    assert set(stats) >= GUIDE_KEYS | METRICS_NODE_KEYS | COUNTERS | PGBOUNCER


@pytest.mark.parametrize("max_overflow", [0, 3])
def test_the_guides_health_checks_never_divide_by_zero(pool, max_overflow):
    idle = from_engine(pool(pool_size=1, max_overflow=max_overflow).get_stats())
    assert guide_health_checks(idle) == {
        "pool_efficiency": 0.0,
        "overflow_usage": 0.0,
        "pool_usage": 0.0,
    }
    assert guide_health_checks(empty_stats(1, 0))["overflow_usage"] == 0.0


def test_ratios_are_right_when_connections_are_out(pool):
    engine = pool(pool_size=2, max_overflow=2)
    records = [engine.checkout() for _ in range(3)]

    ratios = guide_health_checks(from_engine(engine.get_stats()))

    assert ratios == {"pool_efficiency": 1.5, "overflow_usage": 0.5, "pool_usage": 1.5}
    for record in records:
        engine.checkin(record, record.lease)
    engine.close()


def test_a_capacity_of_zero_is_an_int_that_can_be_divided_by():
    zero = Capacity(0)
    assert zero == 0 and isinstance(zero, int) and repr(zero) == "0"
    assert 0 / zero == 0.0
    assert 2 / zero == float("inf")
    assert 3 / Capacity(4) == 0.75
    import json

    assert json.dumps({"overflow_max": zero}) == '{"overflow_max": 0}'


def test_pgbouncer_names_follow_the_pool(pool):
    engine = pool(pool_size=2, max_overflow=0)
    record = engine.checkout()

    stats = from_engine(engine.get_stats())

    assert stats["cl_active"] == stats["sv_active"] == 1
    assert stats["sv_idle"] == 0 and stats["cl_waiting"] == 0 and stats["sv_login"] == 0
    engine.checkin(record, record.lease)
    assert from_engine(engine.get_stats())["sv_idle"] == 1
    engine.close()


def test_combining_adds_gauges_and_counters_and_keeps_the_worst_wait():
    first = {
        **empty_stats(4, 2),
        "checked_out": 3,
        "waits": 1,
        "wait_time_avg": 0.5,
        "wait_time_max": 0.5,
        "maxwait": 0.0,
        "invalidated_by_reason": {"recycle": 2},
    }
    second = {
        **empty_stats(4, 0),
        "checked_out": 1,
        "waits": 3,
        "wait_time_avg": 0.1,
        "wait_time_max": 0.2,
        "maxwait": 1.5,
        "invalidated_by_reason": {"recycle": 1, "pre_ping": 1},
    }

    combined = combine([first, second])

    assert combined["pool_size"] == combined["size"] == 8
    assert combined["overflow_max"] == 2
    assert combined["checked_out"] == 4
    assert combined["waits"] == 4
    assert combined["wait_time_avg"] == pytest.approx((0.5 + 0.3) / 4)
    assert combined["wait_time_max"] == 0.5 and combined["maxwait"] == 1.5
    assert combined["invalidated_by_reason"] == {"recycle": 3, "pre_ping": 1}
    assert isinstance(combined["overflow_max"], Capacity)


def test_get_pool_stats_before_the_first_connection_has_the_configured_sizes():
    stats = get_pool_stats("default")

    assert stats["pool_size"] == 4 and stats["overflow_max"] == 2  # tests/dbsettings/base.py
    assert stats["checked_out"] == 0 and stats["checkouts"] == 0
    assert guide_health_checks(stats)["overflow_usage"] == 0.0


def test_get_pool_stats_adds_up_the_pools_of_the_alias_in_this_process(pool):
    first = registry.get_or_create_pool("default", "params-1", lambda: pool(pool_size=3))
    second = registry.get_or_create_pool("default", "params-2", lambda: pool(pool_size=2))
    registry.get_or_create_pool("other", "params-1", lambda: pool(pool_size=7))
    record = first.checkout()

    stats = get_pool_stats("default")

    assert stats["pool_size"] == 5 and stats["pools"] == 2
    assert stats["checked_out"] == 1 and stats["checkouts"] == 1
    first.checkin(record, record.lease)
    assert second is not first


def test_get_pool_stats_of_an_unknown_alias_raises():
    with pytest.raises(ConnectionDoesNotExist):
        get_pool_stats("nope")
