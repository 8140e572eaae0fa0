"""Connections opened for waiting borrowers in the background, a few at a time (real
sqlite3 connections, real threads)."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from django_dataflow.pool import PoolTimeoutError


def checkouts_in_threads(pool, count: int, hold: float = 0.0, keep: bool = False):
    """``count`` threads check out at once, hold their connection, give it back (or
    keep it)."""
    records, errors = [], []
    start = threading.Barrier(count)

    def borrow() -> None:
        start.wait()
        try:
            record = pool.checkout()
        except Exception as error:
            errors.append(error)
            return
        records.append(record)
        time.sleep(hold)
        if not keep:
            pool.checkin(record, record.lease)

    threads = [threading.Thread(target=borrow) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return records, errors


def test_a_burst_on_an_empty_pool_opens_a_few_connections_at_a_time(make_pool, connector):
    connector.connect_seconds = 0.02
    pool = make_pool(pool_size=10, max_overflow=10, timeout=10, max_opening=2)

    records, errors = checkouts_in_threads(pool, 20, hold=0.005)

    assert errors == [] and len(records) == 20
    # The first borrower connects itself (nothing else could come back), the queue gets
    # two openers, a few more once connections are open: never twenty connects at once.
    assert connector.most_connecting <= 1 + max(2, 20 // 4)
    # Given-back connections served part of the queue: fewer connections than borrowers.
    assert connector.opened < 20
    assert pool.get_stats()["total"] == connector.opened


def test_beyond_pool_size_a_small_pool_opens_its_overflow_one_at_a_time(make_pool, connector):
    # HikariCP's spike: the pool_size connections serve the queue as they come back, so
    # overflow comes one connect at a time (a queue of ten on 5 + 45 opened two at once,
    # and ended the burst with more connections and no sooner).
    pool = make_pool(pool_size=5, max_overflow=45, timeout=10, max_opening=2)
    held = [pool.checkout() for _ in range(5)]
    connector.connect_seconds = 0.3
    connector.most_connecting = 0
    records, errors = checkouts_in_threads(pool, 10, hold=0.05)
    assert errors == [] and len(records) == 10
    assert connector.most_connecting == 1
    for record in held:
        pool.checkin(record, record.lease)


def test_below_pool_size_the_openers_start_with_max_opening_at_once(make_pool, connector):
    pool = make_pool(pool_size=10, max_overflow=0, timeout=10, max_opening=2)
    held = pool.checkout()  # one open: the queue waits for openers, not its own connects
    connector.connect_seconds = 0.3
    connector.most_connecting = 0
    records, errors = checkouts_in_threads(pool, 6, keep=True)
    assert errors == [] and len(records) == 6
    assert connector.most_connecting == 2
    for record in [held, *records]:
        pool.checkin(record, record.lease)


def test_an_opener_thread_goes_on_opening_while_the_queue_needs_connections(make_pool, connector):
    # Starting a thread per connection costs its starter a turn at the interpreter lock
    # among every busy thread: one opener opens connection after connection instead.
    connector.connect_seconds = 0.05  # long enough for every borrower to queue
    pool = make_pool(pool_size=6, max_overflow=0, timeout=10, max_opening=1)

    records, errors = checkouts_in_threads(pool, 6, keep=True)

    assert errors == [] and len(records) == 6
    openers = [t for t in connector.connecting_threads if t.name.startswith("dataflow-open")]
    assert len(openers) == 5  # the first borrower connected in its own thread
    assert len(set(openers)) == 1  # one opener thread for all five, not one each
    for record in records:
        pool.checkin(record, record.lease)


def test_a_waiter_takes_a_new_connection_when_nothing_comes_back(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0, timeout=5)
    held = pool.checkout()
    (got,), _ = checkouts_in_threads(pool, 1, keep=True)
    assert got is not held
    assert connector.opened == 2
    stats = pool.get_stats()
    assert (stats["total"], stats["checked_out"], stats["connections_created"]) == (2, 2, 2)


def test_with_a_connection_out_a_failed_connect_fails_nobody_and_is_retried(make_pool, connector):
    # The server or the role may be out of sessions: the waiter is not failed with the
    # connect's error; the connect is tried again after a short backoff.
    pool = make_pool(pool_size=2, max_overflow=0, timeout=10)
    held = pool.checkout()
    connector.fail_next_connect = sqlite3.OperationalError("too many connections")
    started = time.monotonic()
    record = pool.checkout()
    assert 0.02 <= time.monotonic() - started < 2
    stats = pool.get_stats()
    assert (stats["total"], stats["connection_errors"], stats["wait_queue"]) == (2, 1, 0)
    assert connector.opened == 3
    pool.checkin(record, record.lease)
    pool.checkin(held, held.lease)


def test_a_timeout_after_failed_connects_carries_the_last_connect_error(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0, timeout=0.6)
    held = pool.checkout()
    connector.fail_always = sqlite3.OperationalError("too many connections for role")
    with pytest.raises(PoolTimeoutError, match="too many connections for role") as raised:
        pool.checkout()
    error = raised.value
    assert error.last_connect_error is connector.fail_always
    assert error.__cause__ is connector.fail_always
    # Retried with a growing backoff (0.05, 0.1, 0.2 ... s, jittered), not in a loop.
    assert 2 <= connector.opened - 1 <= 6
    stats = pool.get_stats()
    assert (stats["total"], stats["checked_out"], stats["wait_queue"]) == (1, 1, 0)
    pool.checkin(held, held.lease)


def wait_until(condition) -> None:
    deadline = time.monotonic() + 5
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)


def time_out_while_a_connect_for_it_hangs(pool, connector):
    """Hold one connection; a second checkout times out while its connect hangs; then
    let the connect finish. Returns the held record."""
    held = pool.checkout()
    connector.connect_gate = threading.Event()
    with pytest.raises(PoolTimeoutError):
        pool.checkout()
    return held


def test_a_connection_opened_after_its_waiter_gave_up_is_kept_idle(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0, timeout=0.2)
    held = time_out_while_a_connect_for_it_hangs(pool, connector)
    connector.connect_gate.set()
    wait_until(lambda: pool.get_stats()["idle_connections"] >= 1)
    stats = pool.get_stats()
    assert (stats["total"], stats["idle_connections"], stats["checked_out"]) == (2, 1, 1)
    pool.checkin(held, held.lease)


def test_connections_opened_for_a_closed_pool_are_closed(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0, timeout=0.2)
    held = time_out_while_a_connect_for_it_hangs(pool, connector)
    pool.close()
    connector.connect_gate.set()
    wait_until(lambda: connector.closed >= 1)
    assert connector.closed == 1
    pool.checkin(held, held.lease)
    assert pool.get_stats()["total"] == 0


def test_max_opening_must_be_positive(make_pool):
    with pytest.raises(ValueError, match="max_opening"):
        make_pool(max_opening=0)


def test_at_the_limit_a_waiter_gets_a_parked_connection_once_the_openers_are_done(
    make_pool, connector
):
    # The queue outgrew what the pool may still open: the last waiter's connection can
    # only be the one parked by an idle thread, not one freed 30 s later by housekeeping.
    connector.connect_seconds = 0.02
    pool = make_pool(pool_size=2, max_overflow=1, timeout=5, max_opening=1)
    parked = pool.checkout()
    assert pool.park(parked, parked.lease)

    records, errors = checkouts_in_threads(pool, 3, keep=True)

    assert errors == []
    assert parked in records
    assert connector.opened == 3


def test_openers_start_two_at_a_time_then_up_to_a_quarter_of_the_open_connections(
    make_pool, connector
):
    connector.connect_seconds = 0.03
    pool = make_pool(pool_size=20, max_overflow=20, timeout=10, max_opening=2)

    records, errors = checkouts_in_threads(pool, 40, keep=True)  # nothing comes back

    assert errors == [] and len(records) == 40
    started_with = connector.connecting_at_start
    # Slow start: the borrower's own connect and two openers while the pool is empty...
    assert max(started_with[:4]) <= 3, started_with
    # ...then more at once as connections open, never more than a quarter of 40 (+1).
    assert 5 <= connector.most_connecting <= 1 + 40 // 4, started_with
    assert connector.opened == 40


def test_a_slot_freed_by_a_discard_is_opened_for_the_queue_in_the_background(make_pool, connector):
    # The waiter takes whatever comes first: here a connection given back while the
    # replacement for the discarded one is still connecting. (When the freed slot was
    # the waiter's own to connect in, it waited for that connect.)
    pool = make_pool(pool_size=2, max_overflow=0, timeout=5)
    discarded, kept = pool.checkout(), pool.checkout()
    result = []
    waiter = threading.Thread(target=lambda: result.append(pool.checkout()))
    waiter.start()
    wait_until(lambda: pool.get_stats()["wait_queue"] == 1)
    connector.connect_seconds = 1.0
    pool.checkin(discarded, discarded.lease, discard_reason="error")
    wait_until(lambda: connector.connecting == 1)
    waiting_since = time.monotonic()
    pool.checkin(kept, kept.lease)
    waiter.join(timeout=5)

    assert result == [kept]
    assert time.monotonic() - waiting_since < 0.5, "the waiter waited for the connect"
    assert connector.connecting_threads[-1] is not waiter, "opened in the background"
    # The replacement is kept idle for the next borrower, within the limit.
    wait_until(lambda: pool.get_stats()["idle_connections"] == 1)
    assert pool.get_stats()["idle_connections"] == 1
    assert pool.get_stats()["total"] == 2


class StalledServer:
    """connect() waits for ``answer``, then fails (with ``recovers``, only the connects
    already waiting: later ones succeed): a server that does not answer until a
    connect timeout, in miniature."""

    def __init__(self, connector, recovers: bool = False) -> None:
        self.answer = threading.Event()
        self.recovers = recovers
        self.original = connector.connect
        connector.connect = self.connect

    def connect(self):
        if self.recovers and self.answer.is_set():
            return self.original()
        self.answer.wait(10)
        raise sqlite3.OperationalError("connect timed out")


def queued_checkouts(pool, count: int, queued: int | None = None):
    """``count`` threads check out; returns (their outcomes, the threads) once
    ``queued`` of them (all by default) wait in the queue."""
    outcomes = []

    def borrow():
        try:
            outcomes.append(pool.checkout())
        except Exception as error:
            outcomes.append(error)

    threads = [threading.Thread(target=borrow) for _ in range(count)]
    for thread in threads:
        thread.start()
    wait_until(lambda: pool.get_stats()["wait_queue"] == (count if queued is None else queued))
    return outcomes, threads


def test_with_nothing_open_a_failed_connect_fails_every_waiter_at_once(make_pool, connector):
    # Against a replica that does not answer, each connect takes the connect timeout.
    # With nothing open, nothing can come back: every waiter fails with the first failed
    # connect, none waits behind one attempt after another for its whole pool_timeout.
    # Here every connect fails after 0.5 s.
    pool = make_pool(pool_size=8, max_overflow=0, timeout=10)
    first = pool.checkout()  # something opened, then discarded: the pool is empty again
    pool.checkin(first, first.lease, discard_reason="manual")
    connector.fail_always = sqlite3.OperationalError("connect timed out")
    connector.connect_seconds = 0.5
    started = time.monotonic()
    # (The first connects in its own thread: nothing is open or opening for it.)
    outcomes, threads = queued_checkouts(pool, 6, queued=5)
    for thread in threads:
        thread.join(5)
    assert len(outcomes) == 6
    assert all(isinstance(outcome, sqlite3.OperationalError) for outcome in outcomes)
    # All at the first failures, not one after another (which took 1.5 s and more).
    assert time.monotonic() - started < 1.2
    assert pool.get_stats()["wait_queue"] == 0


def test_with_a_connection_out_failed_connects_fail_no_waiter(make_pool, connector):
    # Something open will come back: the waiters wait for it, however many connects
    # fail meanwhile, and are served in turn by the returned connection.
    pool = make_pool(pool_size=2, max_overflow=0, timeout=10)
    held = pool.checkout()
    server = StalledServer(connector)
    outcomes = []

    def borrow():
        try:
            record = pool.checkout()
        except Exception as error:
            outcomes.append(error)
            return
        outcomes.append(record)
        pool.checkin(record, record.lease)

    threads = [threading.Thread(target=borrow) for _ in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: pool.get_stats()["wait_queue"] == 3)
    server.answer.set()  # the stalled connect fails, and so do its retries
    time.sleep(0.3)
    assert outcomes == [], "a failed connect failed a waiter"
    pool.checkin(held, held.lease)  # serves the first, who serves the next ...
    for thread in threads:
        thread.join(5)
    assert outcomes == [held] * 3
    assert pool.get_stats()["connection_errors"] >= 2


def test_every_connect_is_timed_in_the_connect_time_histogram(make_pool, connector):
    # A borrower's own connect and the openers' background connects alike: the
    # histogram (Prometheus ..._connect_seconds, OpenTelemetry create_time) counts every
    # connection opened, and their time.
    connector.connect_seconds = 0.02
    pool = make_pool(pool_size=8, max_overflow=0, timeout=10, max_opening=2)

    records, errors = checkouts_in_threads(pool, 8, keep=True)  # nothing comes back

    assert errors == [] and len(records) == 8
    background = [t for t in connector.connecting_threads if t.name.startswith("dataflow-open")]
    assert len(background) == 7  # the first borrower connected in its own thread
    stats = pool.get_stats()
    assert stats["connections_created"] == connector.opened == 8
    assert stats["connect_time_count"] == 8
    assert stats["connect_time_total"] >= 8 * 0.02
    assert stats["connect_time_le_0.01"] == 0  # none was counted as instant
    for record in records:
        pool.checkin(record, record.lease)
