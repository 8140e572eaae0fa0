"""``overflow_delay``: a waiter waits that long for a connection to come back before the
pool opens one beyond ``pool_size`` for it (what the transaction scope uses, see
docs/design.md). Real sqlite3 connections; timing bounds are generous."""

from __future__ import annotations

import threading
import time

import pytest

from tests.pool.test_failures import StartFailsOnce


def checkout_in_thread(pool, results: list) -> threading.Thread:
    def borrow() -> None:
        started = time.monotonic()
        record = pool.checkout()
        results.append((record, time.monotonic() - started))

    thread = threading.Thread(target=borrow)
    thread.start()
    return thread


def test_a_connection_returned_within_the_delay_is_used_instead_of_an_overflow(make_pool):
    pool = make_pool(pool_size=1, max_overflow=1, timeout=5, overflow_delay=1.0)
    held = pool.checkout()
    results: list = []
    thread = checkout_in_thread(pool, results)
    time.sleep(0.2)
    assert pool.get_stats()["total"] == 1  # no overflow opened while it waits
    pool.checkin(held, held.lease)
    thread.join(5)
    ((record, waited),) = results
    assert record is held
    assert waited < 0.9
    assert pool.get_stats()["connections_created"] == 1
    pool.checkin(record, record.lease)


def test_an_overflow_connection_is_opened_once_a_waiter_has_waited_the_delay(make_pool):
    pool = make_pool(pool_size=1, max_overflow=1, timeout=5, overflow_delay=0.3)
    held = pool.checkout()
    results: list = []
    thread = checkout_in_thread(pool, results)
    thread.join(5)
    ((record, waited),) = results
    assert record is not held
    assert 0.25 <= waited < 3.0
    assert pool.get_stats()["connections_created"] == 2
    for taken in (record, held):
        pool.checkin(taken, taken.lease)


def test_without_a_delay_the_overflow_is_opened_at_once(make_pool):
    pool = make_pool(pool_size=1, max_overflow=1, timeout=5)
    held = pool.checkout()
    started = time.monotonic()
    record = pool.checkout()
    assert time.monotonic() - started < 0.25
    for taken in (record, held):
        pool.checkin(taken, taken.lease)


def test_the_pools_first_connections_are_not_delayed(make_pool):
    """Below ``pool_size`` nothing waits for the delay: a cold burst opens the base."""
    pool = make_pool(pool_size=3, max_overflow=2, timeout=5, overflow_delay=5.0)
    results: list = []
    threads = [checkout_in_thread(pool, results) for _ in range(3)]
    for thread in threads:
        thread.join(5)
    assert len(results) == 3
    assert max(waited for _, waited in results) < 2.0
    for record, _ in results:
        pool.checkin(record, record.lease)


def test_an_opener_that_cannot_be_started_after_the_delay_gives_its_slot_back(
    make_pool, monkeypatch
):
    pool = make_pool(pool_size=1, max_overflow=1, timeout=5, overflow_delay=0.2)
    held = pool.checkout()
    results: list = []
    start = None

    def fail_the_opener() -> None:
        nonlocal start
        time.sleep(0.1)  # the waiter is queued; its overflow opener starts at 0.2 s
        start = StartFailsOnce(monkeypatch)

    thread = checkout_in_thread(pool, results)
    fail_the_opener()
    time.sleep(0.4)
    assert start.failed == 1
    stats = pool.get_stats()
    assert (stats["total"], stats["wait_queue"]) == (1, 1)  # the slot was given back
    pool.checkin(held, held.lease)  # and the waiter is served by a return
    thread.join(5)
    ((record, _),) = results
    assert record is held
    pool.checkin(record, record.lease)


def test_a_negative_delay_is_refused(make_pool):
    with pytest.raises(ValueError, match="overflow_delay"):
        make_pool(overflow_delay=-1)
