"""What the pool tells the logs and its timeout error: the pool's snapshot as log
records' extra fields and as PoolTimeoutError's attributes; and the per-context wait
total that Server-Timing reports."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from django_dataflow.pool import ConnectionPool, PoolTimeoutError
from django_dataflow.pool.errors import LOG_FIELDS
from django_dataflow.pool.reporting import collect_waits, current_waits, log_extra
from tests.pool.connectors import SQLiteFileConnector

FIELDS = {"alias", "vendor", "pool_size", "checked_out", "waiting", "waited"}


@pytest.fixture
def named_pool(tmp_path):
    pools = []

    def make(**options) -> ConnectionPool:
        connector = SQLiteFileConnector(tmp_path / "reporting.sqlite3")
        pool = ConnectionPool(connector, name="reports", vendor="sqlite", pre_ping=False, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def test_the_log_fields_are_the_documented_ones():
    assert set(LOG_FIELDS) == FIELDS


def test_a_timeout_logs_the_pool_and_raises_it_as_attributes(named_pool, caplog):
    pool = named_pool(pool_size=1, max_overflow=0, timeout=0.2)
    held = pool.checkout()
    with (
        caplog.at_level(logging.WARNING, logger="django_dataflow.pool"),
        pytest.raises(PoolTimeoutError) as raised,
    ):
        pool.checkout()
    error = raised.value
    assert (error.alias, error.vendor, error.pool_size, error.max_overflow) == (
        "reports",
        "sqlite",
        1,
        0,
    )
    assert (error.checked_out, error.waiting) == (1, 0)
    assert error.waited >= 0.2
    assert error.last_connect_error is None
    assert error.snapshot()["max_overflow"] == 0
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == str(error)
    assert {field: getattr(record, field) for field in FIELDS} == {
        "alias": "reports",
        "vendor": "sqlite",
        "pool_size": 1,
        "checked_out": 1,
        "waiting": 0,
        "waited": error.waited,
    }
    pool.checkin(held, held.lease)


def test_the_engine_error_still_reads_as_before(named_pool):
    pool = named_pool(pool_size=1, max_overflow=2, timeout=0.05)
    held = [pool.checkout() for _ in range(3)]
    with pytest.raises(PoolTimeoutError, match=r"3 of 3 connections checked out \(pool_size=1"):
        pool.checkout()
    for record in held:
        pool.checkin(record, record.lease)


def test_a_leak_warning_carries_the_fields(named_pool, caplog):
    pool = named_pool(pool_size=2, leak_threshold=0.05, leak_check_interval=0.01)
    held = pool.checkout()
    time.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="django_dataflow.pool"):
        pool.maintain()
    (record,) = [r for r in caplog.records if "leak" in r.getMessage()]
    assert (record.alias, record.vendor, record.checked_out, record.waited) == (
        "reports",
        "sqlite",
        1,
        None,
    )
    pool.checkin(held, held.lease)


def test_a_pool_without_a_vendor_logs_an_empty_one(tmp_path):
    pool = ConnectionPool(SQLiteFileConnector(tmp_path / "n.sqlite3"), name="n")
    assert log_extra(pool, waited=1.5) == {
        "alias": "n",
        "vendor": "",
        "pool_size": 5,
        "checked_out": 0,
        "waiting": 0,
        "waited": 1.5,
    }
    pool.close()


def hold_in_a_thread(pool, release: threading.Event) -> threading.Thread:
    """A thread that checks a connection out (waiting if need be), holds it until
    ``release`` is set, and checks it in."""

    def hold():
        record = pool.checkout()
        release.wait(10)
        pool.checkin(record, record.lease)

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def wait_for(condition) -> None:
    deadline = time.monotonic() + 5
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


def test_waits_add_up_in_the_collecting_context_only(named_pool):
    pool = named_pool(pool_size=1, max_overflow=0, timeout=5)
    with collect_waits() as waits:
        held = pool.checkout()
        assert (waits.count, waits.seconds) == (0, 0.0)  # it did not wait
        # Another thread's wait: its context is not this one.
        release = threading.Event()
        other = hold_in_a_thread(pool, release)
        wait_for(lambda: pool.get_stats()["wait_queue"] == 1)
        pool.checkin(held, held.lease)
        wait_for(lambda: pool.get_stats()["wait_queue"] == 0)
        assert waits.count == 0
        # This context's own wait, for the connection the other thread holds 0.15 s.
        threading.Timer(0.15, release.set).start()
        started = time.monotonic()
        mine = pool.checkout()
        forced = time.monotonic() - started
        other.join()
        assert waits.count == 1
        assert 0.1 <= waits.seconds <= forced
    assert current_waits.get() is None
    pool.checkin(mine, mine.lease)


def test_a_timed_out_wait_counts_too(named_pool):
    pool = named_pool(pool_size=1, max_overflow=0, timeout=0.1)
    held = pool.checkout()
    with collect_waits() as waits, pytest.raises(PoolTimeoutError):
        pool.checkout()
    assert waits.count == 1 and waits.seconds >= 0.1
    pool.checkin(held, held.lease)
