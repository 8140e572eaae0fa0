"""The pool engine on its own, with real sqlite3 connections: limits, waiters, timeouts,
recycle, pre-ping, invalidation, dead threads. Timing assertions use generous bounds."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from django_dataflow.pool import PoolClosedError, PoolTimeoutError


def hold_in_threads(pool, count, hold_seconds):
    """Start ``count`` threads that each check out, hold, and return a connection."""
    errors = []

    def borrow():
        try:
            record = pool.checkout()
            time.sleep(hold_seconds)
            pool.checkin(record, record.lease)
        except Exception as error:  # collected and asserted on by the caller
            errors.append(error)

    threads = [threading.Thread(target=borrow) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, errors


def test_checkout_reuses_the_returned_connection(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0)
    first = pool.checkout()
    pool.checkin(first, first.lease)
    second = pool.checkout()
    assert second is first
    assert connector.opened == 1


def test_never_more_than_pool_size_plus_overflow_under_50_threads(make_pool, connector):
    pool = make_pool(pool_size=5, max_overflow=3, timeout=30)
    peak = 0
    lock = threading.Lock()

    def borrow():
        nonlocal peak
        for _ in range(5):
            record = pool.checkout()
            with lock:
                peak = max(peak, pool.get_stats()["total"])
            time.sleep(0.002)
            pool.checkin(record, record.lease)

    threads = [threading.Thread(target=borrow) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak <= 8
    assert connector.opened <= 8
    assert pool.get_stats()["checkouts"] == 250


def test_overflow_connections_survive_steady_load_and_close_after_idling(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=3, overflow_idle_timeout=0.3)
    for _ in range(5):  # five rounds of a load that needs 5 connections at once
        threads, errors = hold_in_threads(pool, 5, 0.05)
        for thread in threads:
            thread.join()
        assert not errors
    assert connector.opened == 5, "overflow connections must be reused, not reopened"
    assert connector.closed == 0
    time.sleep(0.4)
    pool.maintain()
    stats = pool.get_stats()
    assert stats["total"] == 2
    assert stats["idle_connections"] == 2
    assert connector.closed == 3


def test_waiters_are_served_first_come_first_served(make_pool):
    pool = make_pool(pool_size=1, max_overflow=0, timeout=10)
    held = pool.checkout()
    order = []

    def wait_in_line(number):
        record = pool.checkout()
        order.append(number)
        pool.checkin(record, record.lease)

    threads = []
    for number in range(5):
        thread = threading.Thread(target=wait_in_line, args=(number,))
        thread.start()
        threads.append(thread)
        # Let each waiter enqueue before the next one arrives.
        deadline = time.monotonic() + 5
        while pool.get_stats()["wait_queue"] < number + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    pool.checkin(held, held.lease)
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]


def test_checkout_timeout_is_precise_and_explains_itself(make_pool):
    pool = make_pool(pool_size=1, max_overflow=1, timeout=0.5)
    pool.checkout()
    pool.checkout()
    started = time.monotonic()
    with pytest.raises(PoolTimeoutError) as raised:
        pool.checkout()
    waited = time.monotonic() - started
    assert 0.45 <= waited < 1.0
    message = str(raised.value)
    assert "'test'" in message  # the alias
    assert "2 of 2 connections checked out" in message
    assert "0 other requests waiting" in message
    assert "Timed out after 0.5" in message
    assert pool.get_stats()["timeouts"] == 1


def test_a_timed_out_waiter_never_swallows_a_connection(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0, timeout=0.01)
    stop = time.monotonic() + 1.5
    timeouts = 0

    def churn():
        while time.monotonic() < stop:
            record = pool.checkout(timeout=5)
            time.sleep(0.0005)
            pool.checkin(record, record.lease)

    def impatient():
        nonlocal timeouts
        while time.monotonic() < stop:
            try:
                record = pool.checkout(timeout=0.0005)
            except PoolTimeoutError:
                timeouts += 1
            else:
                pool.checkin(record, record.lease)

    threads = [threading.Thread(target=churn) for _ in range(3)]
    threads += [threading.Thread(target=impatient) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert timeouts > 0, "the test must provoke timeouts to mean anything"
    stats = pool.get_stats()
    assert stats["checked_out"] == 0
    assert stats["wait_queue"] == 0
    assert stats["total"] == stats["idle_connections"] == 2
    # Both connections can still be had at once: none was lost.
    first, second = pool.checkout(timeout=0.5), pool.checkout(timeout=0.5)
    assert first is not second


def test_a_hanging_connect_does_not_block_other_borrowers(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0, timeout=5)
    first = pool.checkout()  # nothing open: connects in its own thread
    connector.connect_gate = threading.Event()
    got = []
    # Finds nothing free: waits, while an opener connects for it (and hangs).
    waiting = threading.Thread(target=lambda: got.append(pool.checkout()))
    waiting.start()
    deadline = time.monotonic() + 5
    while connector.opened < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    started = time.monotonic()
    pool.checkin(first, first.lease)  # given back: to the waiting borrower, at once
    waiting.join(5)
    assert got == [first]
    assert time.monotonic() - started < 0.5
    pool.checkin(first, first.lease)
    again = pool.checkout(timeout=1)  # nor does it hold up the next borrower
    assert again is first
    assert time.monotonic() - started < 0.5
    assert pool.get_stats()["total"] == 2  # the hanging connect holds its slot
    connector.connect_gate.set()
    deadline = time.monotonic() + 5
    while pool.get_stats()["idle_connections"] < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert pool.get_stats()["idle_connections"] == 1, "the late connection is kept idle"


def test_a_failed_connect_gives_its_slot_back(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, timeout=0.5)
    connector.fail_next_connect = sqlite3.OperationalError("server down")
    with pytest.raises(sqlite3.OperationalError):
        pool.checkout()
    assert pool.get_stats()["total"] == 0
    assert pool.get_stats()["connection_errors"] == 1
    record = pool.checkout()
    assert record.connection.execute("SELECT 1").fetchone() == (1,)


def test_a_freed_slot_goes_to_the_oldest_waiter(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, timeout=5)
    held = pool.checkout()
    result = []
    waiter = threading.Thread(target=lambda: result.append(pool.checkout()))
    waiter.start()
    while pool.get_stats()["wait_queue"] < 1:
        time.sleep(0.001)
    pool.checkin(held, held.lease, discard_reason="error")
    waiter.join(timeout=5)
    assert result and result[0] is not held
    assert connector.opened == 2


def test_recycle_replaces_old_connections(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, recycle=0.2)
    first = pool.checkout()
    pool.checkin(first, first.lease)
    time.sleep(0.25)
    second = pool.checkout()
    assert second is not first
    assert pool.get_stats()["recycled"] == 1
    # Expiry at return: the connection is closed instead of kept.
    time.sleep(0.25)
    pool.checkin(second, second.lease)
    assert pool.get_stats()["idle_connections"] == 0
    assert pool.get_stats()["recycled"] == 2


@pytest.mark.parametrize("recycle", [0, None])
def test_recycle_zero_or_none_means_never(make_pool, recycle):
    pool = make_pool(pool_size=1, max_overflow=0, recycle=recycle)
    record = pool.checkout()
    assert record.recycle_at is None


def test_recycle_deadlines_are_jittered(make_pool):
    pool = make_pool(pool_size=20, max_overflow=0, recycle=1000)
    records = [pool.checkout() for _ in range(20)]
    lifetimes = {round(r.recycle_at - r.created_at, 3) for r in records}
    assert len(lifetimes) > 1
    assert all(975 <= lifetime <= 1000.01 for lifetime in lifetimes)


def test_pre_ping_replaces_a_dead_connection_transparently(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, pre_ping=True, pre_ping_bypass=0.05)
    first = pool.checkout()
    pool.checkin(first, first.lease)
    connector.dead.add(id(first.connection))  # the server side dies while idle
    time.sleep(0.1)
    second = pool.checkout()
    assert second is not first
    assert second.connection.execute("SELECT 1").fetchone() == (1,)
    assert pool.get_stats()["pre_ping_failures"] == 1


def test_pre_ping_is_skipped_within_the_bypass_window(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, pre_ping=True, pre_ping_bypass=10)
    record = pool.checkout()
    for _ in range(20):
        pool.checkin(record, record.lease)
        record = pool.checkout()
    assert connector.pings == 0


def test_invalidation_makes_older_connections_be_checked(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0, pre_ping=False)
    first, second = pool.checkout(), pool.checkout()
    pool.checkin(second, second.lease)
    first.invalidate("disconnect")
    pool.invalidate_older_connections()
    pool.checkin(first, first.lease)
    assert pool.get_stats()["invalidated_by_reason"] == {"disconnect": 1}
    again = pool.checkout()
    assert again is second
    assert connector.pings == 1  # checked although pre-ping is off


def test_reset_rolls_back_an_open_transaction(make_pool):
    pool = make_pool(pool_size=1, max_overflow=0)
    record = pool.checkout()
    record.connection.execute("CREATE TABLE IF NOT EXISTS t (x)")
    record.connection.execute("BEGIN")
    record.connection.execute("INSERT INTO t VALUES (1)")
    pool.checkin(record, record.lease)
    again = pool.checkout()
    assert not again.connection.in_transaction
    assert again.connection.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_stale_lease_is_ignored(make_pool):
    pool = make_pool(pool_size=1, max_overflow=0)
    record = pool.checkout()
    lease = record.lease
    pool.checkin(record, lease)
    other = pool.checkout()
    pool.checkin(record, lease)  # a second return of the old checkout: no effect
    assert other.checked_out
    assert pool.get_stats()["checked_out"] == 1


def test_connections_of_dead_threads_are_reclaimed(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0, timeout=2)
    threads = [threading.Thread(target=pool.checkout) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pool.get_stats()["checked_out"] == 2
    record = pool.checkout(timeout=2)  # would time out if the dead threads kept theirs
    assert record.holder is threading.current_thread()
    assert pool.get_stats()["reclaimed_from_dead_threads"] == 2
    assert connector.opened == 2


def test_housekeeping_reclaims_connections_of_dead_threads(make_pool):
    pool = make_pool(pool_size=2, max_overflow=0)
    thread = threading.Thread(target=pool.checkout)
    thread.start()
    thread.join()
    pool.maintain()
    assert pool.get_stats()["checked_out"] == 0
    assert pool.get_stats()["idle_connections"] == 1


def test_close_wakes_waiters_and_refuses_checkouts(make_pool):
    pool = make_pool(pool_size=1, max_overflow=0, timeout=5)
    pool.checkout()
    errors = []

    def wait():
        try:
            pool.checkout()
        except PoolClosedError as error:
            errors.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    while pool.get_stats()["wait_queue"] < 1:
        time.sleep(0.001)
    pool.close()
    waiter.join(timeout=2)
    assert len(errors) == 1
    with pytest.raises(PoolClosedError):
        pool.checkout()


def test_returned_connection_goes_straight_to_the_oldest_waiter(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, timeout=5)
    held = pool.checkout()
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.checkout()))
    waiter.start()
    while pool.get_stats()["wait_queue"] < 1:
        time.sleep(0.001)
    pool.checkin(held, held.lease)
    # Handed over under the lock: a newcomer cannot take it first.
    with pytest.raises(PoolTimeoutError):
        pool.checkout(timeout=0.05)
    waiter.join()
    assert got == [held]
    assert connector.opened == 1


def test_pool_rejects_impossible_sizes(connector):
    from django_dataflow.pool import ConnectionPool

    with pytest.raises(ValueError, match="pool_size"):
        ConnectionPool(connector, pool_size=0)
    with pytest.raises(ValueError, match="max_overflow"):
        ConnectionPool(connector, max_overflow=-1)


def test_a_connection_closed_behind_the_pools_back_is_replaced(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, pre_ping=False)
    first = pool.checkout()
    pool.checkin(first, first.lease)
    first.connection.close()  # e.g. a test closing the raw connection of a dead thread
    second = pool.checkout()
    assert second is not first
    assert second.connection.execute("SELECT 1").fetchone() == (1,)
    assert pool.get_stats()["invalidated_by_reason"] == {"closed": 1}


def test_a_connection_killed_inside_the_bypass_window_is_still_replaced(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, pre_ping=True, pre_ping_bypass=60)
    first = pool.checkout()
    pool.checkin(first, first.lease)
    connector.dead.add(id(first.connection))  # killed right after its return
    second = pool.checkout()
    assert second is not first
    assert pool.get_stats()["pre_ping_failures"] == 1


def test_close_at_exit_closes_what_the_exiting_and_ended_threads_hold_not_live_threads(
    make_pool, connector
):
    # The atexit handler's close: idle connections, the exiting thread's own checkout and
    # an ended thread's are closed; a running (daemon) thread's is left alone, since
    # closing a connection under a query could crash the driver.
    pool = make_pool(pool_size=4, max_overflow=0)
    mine = pool.checkout()  # the exiting thread's
    ended = []
    finished = threading.Thread(target=lambda: ended.append(pool.checkout()))
    finished.start()
    finished.join()
    hold, taken = threading.Event(), threading.Event()
    running = []

    def keep_one():
        running.append(pool.checkout())
        taken.set()
        hold.wait(10)

    daemon = threading.Thread(target=keep_one, daemon=True)
    daemon.start()
    assert taken.wait(5)
    idle = pool.checkout()
    pool.checkin(idle, idle.lease)

    pool.close_at_exit()
    assert connector.closed == 3  # the idle one, the exiting thread's, the ended thread's
    for record in (mine, ended[0]):
        with pytest.raises(sqlite3.ProgrammingError):
            record.connection.execute("SELECT 1")
    running[0].connection.execute("SELECT 1")  # still open: its thread runs
    hold.set()
    daemon.join(5)


def test_close_closes_the_connections_of_threads_that_ended_holding_them(make_pool, connector):
    # Nothing else would ever give them back: a closed pool's housekeeping reclaims
    # nothing, so close() must, or they stay open for good.
    pool = make_pool(pool_size=2, max_overflow=0)
    ended = threading.Thread(target=pool.checkout)
    ended.start()
    ended.join()
    pool.close()
    assert (connector.opened, connector.closed) == (1, 1)
    assert pool.get_stats()["checked_out"] == 0


def test_a_closed_pools_housekeeping_closes_connections_of_threads_ended_since(
    make_pool, connector
):
    pool = make_pool(pool_size=2, max_overflow=0)
    taken, release = threading.Event(), threading.Event()

    def hold_past_close():
        pool.checkout()
        taken.set()
        release.wait(5)

    thread = threading.Thread(target=hold_past_close)
    thread.start()
    assert taken.wait(5)
    pool.close()
    assert connector.closed == 0  # its thread still runs: left alone
    release.set()
    thread.join()
    pool.maintain()
    assert (connector.opened, connector.closed) == (1, 1)
