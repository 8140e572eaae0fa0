"""The per-process publisher: what it writes, when, and what a forked child inherits."""

from __future__ import annotations

import json
import os

import pytest

from django_dataflow.monitoring import publisher as publishing
from django_dataflow.monitoring import store
from django_dataflow.monitoring.publisher import SERVER_SESSION, Publisher, _Recent
from django_dataflow.pool import ConnectionPool, registry
from tests.pool.connectors import SQLiteFileConnector


@pytest.fixture
def stats_dir(settings, tmp_path):
    settings.DATAFLOW_STATS_DIR = str(tmp_path / "stats")
    return tmp_path / "stats"


@pytest.fixture
def pool(tmp_path):
    connector = SQLiteFileConnector(tmp_path / "pool.sqlite3")
    return registry.get_or_create_pool(
        "default", "unit", lambda: ConnectionPool(connector, name="default", pre_ping=False)
    )


@pytest.fixture
def fresh():
    instance = Publisher()
    yield instance
    instance.stop()


def test_nothing_is_written_while_the_process_has_no_pool(fresh, stats_dir):
    assert fresh.publish() is None
    assert list(store.snapshot_files(stats_dir)) == []


def test_the_snapshot_has_the_pools_stats_per_alias_and_the_server_sessions(fresh, stats_dir, pool):
    record = pool.checkout()
    record.info[SERVER_SESSION] = 4242

    path = fresh.publish()

    data = store.read_json(path)
    assert data["pid"] == os.getpid() and data["format"] == store.FORMAT
    default = data["pools"]["default"]
    assert default["checked_out"] == 1 and default["pool_size"] == pool.pool_size
    assert default["vendor"] == "sqlite"
    assert default["sessions"] == [[4242, True, None]]
    pool.checkin(record, record.lease)


def test_an_unchanged_snapshot_is_not_rewritten_until_the_heartbeat(fresh, stats_dir, pool):
    path = fresh.publish()
    written = fresh.last_write

    fresh.publish()
    assert fresh.last_write == written

    record = pool.checkout()
    fresh.publish()
    assert fresh.last_write > written
    assert store.read_json(path)["pools"]["default"]["checked_out"] == 1
    pool.checkin(record, record.lease)


def test_stopping_retires_the_counters_and_removes_the_snapshot(fresh, stats_dir, pool):
    record = pool.checkout()
    pool.checkin(record, record.lease)
    path = fresh.publish()

    fresh.stop()

    assert not path.exists()
    assert store.exited_counters(stats_dir, set())["default"]["checkouts"] == 1


# The child only reads the publisher's state and leaves with os._exit().
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_its_own_identity_and_never_touches_the_parents_file(stats_dir, pool):
    publishing.publisher.publish(force=True)
    parent_path = publishing.publisher.path
    assert parent_path is not None
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        me = publishing.publisher
        state = {
            "pid": me.pid,
            "instance": me.instance,
            "path": str(me.path),
            "thread": me.thread is None,
            "pools": me.build()["pools"],
        }
        me.stop()  # what the child's exit does: must leave the parent's file alone
        os.write(write, json.dumps(state).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        state = json.loads(pipe.read())
    os.waitpid(child, 0)

    assert state["pid"] == child
    assert state["instance"] != publishing.publisher.instance
    assert state == {**state, "path": "None", "thread": True, "pools": {}}
    assert parent_path.exists()
    publishing.publisher.stop()
    publishing.publisher.after_fork_in_child()  # a clean publisher for later tests


def test_a_slow_wait_is_remembered_for_a_minute_even_below_the_lifetime_maximum():
    recent = _Recent()

    def longest(stats, now):
        return recent.update(stats, now)["recent_wait_time_max"]

    assert longest({"waits": 1, "wait_time_avg": 5.0, "wait_time_max": 5.0}, now=0) == 5.0
    # A minute later, one more wait of 1.5 s: not a new maximum, still seen.
    value = longest({"waits": 2, "wait_time_avg": 3.25, "wait_time_max": 5.0}, now=61)
    assert value == pytest.approx(1.5)
    assert longest({"waits": 2, "wait_time_avg": 3.25, "wait_time_max": 5.0}, now=122) == 0


def test_the_oldest_waiter_counts_as_a_recent_wait():
    recent = _Recent()
    assert recent.update({"maxwait": 2.5, "waits": 0}, now=0)["recent_wait_time_max"] == 2.5


def test_publishing_can_be_turned_off(settings, fresh, stats_dir, pool):
    settings.DATAFLOW_STATS_PUBLISH = False

    fresh.start()

    assert fresh.thread is not None and not fresh.thread.is_alive()
    assert fresh.publish(force=True) is None
    assert list(store.snapshot_files(stats_dir)) == []


def test_waits_for_connections_being_opened_are_counted_apart():
    recent = _Recent()
    # A cold start: 30 waits, each for one of the 30 connections being opened.
    assert recent.update({"waits": 30, "connections_created": 30}, now=0)["connect_waits"] == 30
    # Then the pool is full and busy: 5 more waits, no connection opened.
    assert recent.update({"waits": 35, "connections_created": 30}, now=1)["connect_waits"] == 30
    # An engine that counts them itself is believed.
    assert recent.update({"waits": 35, "connect_waits": 7}, now=2)["connect_waits"] == 7


def test_timeouts_and_connection_errors_of_the_last_minute_are_counted():
    recent = _Recent()
    recent.update({"timeouts": 1, "connection_errors": 0}, now=0)
    figures = recent.update({"timeouts": 3, "connection_errors": 2}, now=30)
    assert (figures["recent_timeouts"], figures["recent_connection_errors"]) == (3, 2)
    figures = recent.update({"timeouts": 3, "connection_errors": 2}, now=95)
    assert (figures["recent_timeouts"], figures["recent_connection_errors"]) == (0, 0)
