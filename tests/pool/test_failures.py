"""Overload and failure: the pool waits and then times out, and every reservation (a
waiter, an opener slot, a lease) is undone on every path: a server out of sessions, a
thread that cannot be started, an interrupted ping, a receiver that raises."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from django_dataflow.pool import ConnectionPool
from tests.pool.connectors import SessionLimitedConnector
from tests.pool.test_opening import queued_checkouts


def test_a_server_out_of_sessions_serves_the_queue_instead_of_failing_it(tmp_path):
    # A role limited to 2 sessions, a pool of 1 + 9: connects beyond the second fail,
    # and the requests are served by the two connections, none fails.
    connector = SessionLimitedConnector(tmp_path / "pool.sqlite3", limit=2)
    pool = ConnectionPool(connector, pool_size=1, max_overflow=9, timeout=10, pre_ping=False)
    served, failed = [], []

    def worker():
        for _ in range(20):
            try:
                record = pool.checkout()
            except Exception as error:
                failed.append(error)
                continue
            time.sleep(0.02)
            pool.checkin(record, record.lease)
            served.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failed == [] and len(served) == 160, failed[:3]
        assert connector.refused >= 1, "the test never hit the session limit"
        stats = pool.get_stats()
        assert (stats["checked_out"], stats["wait_queue"]) == (0, 0)
        assert stats["total"] == connector.sessions <= 2
    finally:
        pool.close()


class StartFailsOnce:
    """threading.Thread.start raises RuntimeError("can't start new thread") once."""

    def __init__(self, monkeypatch) -> None:
        original = threading.Thread.start
        self.failed = 0

        def start(thread) -> None:
            if not self.failed:
                self.failed += 1
                raise RuntimeError("can't start new thread")
            original(thread)

        monkeypatch.setattr(threading.Thread, "start", start)


def test_a_failed_thread_start_does_not_wedge_the_pool(make_pool, monkeypatch):
    pool = make_pool(pool_size=1, max_overflow=1, timeout=2)
    held = pool.checkout()
    start = StartFailsOnce(monkeypatch)
    record = pool.checkout()  # its opener cannot start: it connects itself
    assert start.failed == 1
    stats = pool.get_stats()
    assert (stats["total"], stats["checked_out"], stats["wait_queue"]) == (2, 2, 0)
    for taken in (record, held):
        pool.checkin(taken, taken.lease)
    for _ in range(3):  # and the next requests are served
        again = pool.checkout(timeout=1)
        pool.checkin(again, again.lease)
    assert pool.get_stats()["total"] == 2


def test_a_failed_thread_start_after_a_discard_gives_the_slot_back(make_pool, monkeypatch):
    pool = make_pool(pool_size=1, max_overflow=1, timeout=5)
    first, second = pool.checkout(), pool.checkout()
    got, (waiter,) = queued_checkouts(pool, 1)
    StartFailsOnce(monkeypatch)
    pool.checkin(first, first.lease, discard_reason="error")  # no opener for the waiter
    assert pool.get_stats()["total"] == 1, "the opener's slot was not given back"
    pool.maintain()  # the housekeeper serves the queue with it
    waiter.join(5)
    assert len(got) == 1
    for record in (got[0], second):
        pool.checkin(record, record.lease)


class Interrupted(BaseException):
    """An asynchronous exception (KeyboardInterrupt, PyThreadState_SetAsyncExc)."""


def test_an_interrupted_pre_ping_does_not_strand_the_connection(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, timeout=1, pre_ping=True, pre_ping_bypass=0)
    record = pool.checkout()
    pool.checkin(record, record.lease)
    connector.ping = lambda connection: (_ for _ in ()).throw(Interrupted())
    with pytest.raises(Interrupted):
        pool.checkout()
    stats = pool.get_stats()
    assert (stats["checked_out"], stats["total"]) == (0, 0)  # discarded, not lent
    del connector.ping
    again = pool.checkout()
    pool.checkin(again, again.lease)


def test_a_receiver_that_raises_while_a_connection_is_discarded_frees_its_slot(
    make_pool, connector
):
    class Events:
        def invalidated(self, pool, record, reason):
            raise Interrupted

    pool = make_pool(pool_size=1, max_overflow=0, timeout=0.5, events=Events())
    record = pool.checkout()
    with pytest.raises(Interrupted):
        pool.checkin(record, record.lease, discard_reason="error")
    assert pool.get_stats()["total"] == 0
    again = pool.checkout()  # not a PoolTimeout: the slot is free
    pool.checkin(again, again.lease)


def test_an_interrupted_wait_start_leaves_no_waiter_behind(make_pool, monkeypatch):
    # Interrupted after queueing, before waiting (here: in the opener's start): a
    # waiter left in the queue would be handed the next connection, lost for good.
    pool = make_pool(pool_size=1, max_overflow=1, timeout=5)
    held = pool.checkout()

    def interrupted_start(thread):
        raise Interrupted

    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    with pytest.raises(Interrupted):
        pool.checkout()
    monkeypatch.undo()
    stats = pool.get_stats()
    assert (stats["wait_queue"], stats["total"], stats["checked_out"]) == (0, 1, 1)
    pool.checkin(held, held.lease)
    assert pool.get_stats()["idle_connections"] == 1


def test_with_nothing_open_a_refused_connect_still_fails_fast(make_pool, connector):
    pool = make_pool(pool_size=2, max_overflow=0, timeout=10)
    connector.fail_always = sqlite3.OperationalError("the database system is starting up")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError):
        pool.checkout()
    assert time.monotonic() - started < 1
    assert pool.get_stats()["total"] == 0


def fail_a_borrowers_own_connect(pool, connector, monkeypatch, backoff: float):
    """A connection is held, and the next checkout's own connect fails (it replaces an
    invalidated idle connection): a backoff of ``backoff / 2`` to ``backoff`` seconds
    starts, with no opener thread sleeping it out. Returns the held record."""
    monkeypatch.setattr("django_dataflow.pool.base.CONNECT_BACKOFF", backoff)
    held = pool.checkout()
    spare = pool.checkout()
    pool.checkin(spare, spare.lease)
    spare.invalidate()  # the next checkout replaces it, in its own thread
    connector.fail_next_connect = sqlite3.OperationalError("too many connections")
    return held


def test_a_queue_that_forms_during_a_borrowers_backoff_is_served_after_it(
    make_pool, connector, monkeypatch
):
    # The borrower whose own connect failed waits in the queue, and so do the borrowers
    # that come during the backoff: an opener thread sleeps it out and serves them. No
    # connection comes back, and no housekeeper runs for this pool (only the registry's
    # pools are maintained), so nothing else could serve them before their timeout.
    from django_dataflow.pool import registry

    pool = make_pool(pool_size=6, max_overflow=0, timeout=3)
    assert pool not in list(registry._housekeeper.pools())
    held = fail_a_borrowers_own_connect(pool, connector, monkeypatch, backoff=0.2)
    started = time.monotonic()
    outcomes, threads = queued_checkouts(pool, 1)  # its own connect fails: it queues
    assert pool.get_stats()["connection_errors"] == 1
    more, more_threads = queued_checkouts(pool, 3, queued=4)  # during the backoff
    assert time.monotonic() < pool._retry_at, "the backoff ended before the queue formed"
    for thread in threads + more_threads:
        thread.join(5)
    served = time.monotonic() - started
    outcomes += more
    assert all(not isinstance(outcome, BaseException) for outcome in outcomes), outcomes
    assert len(outcomes) == 4
    assert served < 0.5, f"served after {served:.2f} s (backoff at most 0.2 s)"
    stats = pool.get_stats()
    assert (stats["total"], stats["checked_out"], stats["wait_queue"]) == (5, 5, 0)
    assert connector.opened - stats["connection_errors"] - connector.closed == 5
    for record in [held, *outcomes]:
        pool.checkin(record, record.lease)


def test_a_backoff_sleeper_that_cannot_be_started_gives_its_slot_back(
    make_pool, connector, monkeypatch
):
    # The thread that would sleep out the backoff cannot be started: the borrower
    # connects in its own thread instead, and the pool is not left "retrying" for ever.
    pool = make_pool(pool_size=3, max_overflow=0, timeout=3)
    held = fail_a_borrowers_own_connect(pool, connector, monkeypatch, backoff=0.05)
    start = StartFailsOnce(monkeypatch)
    record = pool.checkout()
    assert start.failed == 1
    assert (pool._retrying, pool._retry_due, pool._opening) == (False, False, 0)
    stats = pool.get_stats()
    assert (stats["total"], stats["checked_out"], stats["wait_queue"]) == (2, 2, 0)
    assert connector.opened - stats["connection_errors"] - connector.closed == 2
    for taken in (record, held):
        pool.checkin(taken, taken.lease)
