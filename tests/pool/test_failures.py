"""Overload and failure: the pool waits and then times out, and every reservation (a
waiter, an opener slot, a lease) is undone on every path: a server out of sessions, a
thread that cannot be started, an interrupted ping, a receiver that raises."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from django_dataflow.pool import ConnectionPool, PoolTimeoutError
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


def interrupt_once(after=None):
    """A stand-in that raises Interrupted the first time it is called (after calling
    ``after``, when given), and then calls ``after``."""
    calls = []

    def call(*args, **kwargs):
        result = after(*args, **kwargs) if after is not None else None
        if not calls:
            calls.append(1)
            raise Interrupted
        return result

    return call


def interrupt_the_lend(pool, monkeypatch, where: str) -> None:
    """The pool's next lend raises Interrupted: "before the lend", "half-way through
    the lend" (the record in _out, no lease yet) or "once lent"."""
    if where == "before the lend":
        monkeypatch.setattr(pool, "_lend", interrupt_once())
    elif where == "half-way through the lend":
        monkeypatch.setattr(pool, "_lend", interrupt_once(lambda record, *_: pool._out.add(record)))
    else:
        monkeypatch.setattr(pool, "_lend", interrupt_once(pool._lend))


@pytest.mark.parametrize(
    "where", ["making the record", "before the lend", "half-way through the lend", "once lent"]
)
def test_a_borrowers_connect_interrupted_after_it_returned_strands_nothing(
    make_pool, connector, monkeypatch, where
):
    # An asynchronous exception (KeyboardInterrupt, a gevent Timeout) between the connect
    # and the checkout's return: the connection is given back or closed, its slot freed.
    pool = make_pool(pool_size=2, max_overflow=0, timeout=2)
    if where == "making the record":
        monkeypatch.setattr("django_dataflow.pool.pool.ConnectionRecord", interrupt_once())
    else:
        interrupt_the_lend(pool, monkeypatch, where)
    with pytest.raises(Interrupted):
        pool.checkout()  # nothing is open: the borrower connects in its own thread
    monkeypatch.undo()
    stats = pool.get_stats()
    physically_open = connector.opened - connector.closed
    assert stats["total"] == physically_open == stats["idle_connections"]
    assert (stats["checked_out"], stats["checkouts"] - stats["checkins"]) == (0, 0)
    assert stats["connections_created"] == connector.opened == 1
    assert stats["connections_closed"] == connector.closed
    assert pool._out == set()
    # The whole limit can be checked out, and not one more.
    held = [pool.checkout(timeout=1), pool.checkout(timeout=1)]
    with pytest.raises(PoolTimeoutError):
        pool.checkout(timeout=0.05)
    for record in held:
        pool.checkin(record, record.lease)


def test_a_connect_interrupted_after_it_returned_serves_the_queue_with_its_slot(
    make_pool, connector, monkeypatch
):
    # A borrower replacing an invalidated connection is interrupted once its connect
    # returned: the waiter behind it gets the freed slot (or the connection).
    pool = make_pool(pool_size=2, max_overflow=0, timeout=3)
    held = pool.checkout()
    spare = pool.checkout()
    pool.checkin(spare, spare.lease)
    spare.invalidate()
    entered, gate = threading.Event(), threading.Event()
    original = connector.connect

    def slow_connect():
        entered.set()
        gate.wait(5)  # until the waiter has queued
        return original()

    connector.connect = slow_connect
    monkeypatch.setattr("django_dataflow.pool.pool.ConnectionRecord", interrupt_once())
    interrupted = []

    def borrow():
        try:
            pool.checkout()
        except Interrupted:
            interrupted.append(1)

    borrower = threading.Thread(target=borrow)
    borrower.start()
    assert entered.wait(5)
    outcomes, (waiter,) = queued_checkouts(pool, 1)
    connector.connect = original
    gate.set()
    borrower.join(5)
    waiter.join(5)
    monkeypatch.undo()
    assert interrupted == [1]
    assert len(outcomes) == 1 and not isinstance(outcomes[0], BaseException), outcomes
    stats = pool.get_stats()
    assert (stats["total"], stats["checked_out"], stats["wait_queue"]) == (2, 2, 0)
    assert connector.opened - connector.closed == 2
    for record in (held, outcomes[0]):
        pool.checkin(record, record.lease)


@pytest.mark.parametrize("source", ["the idle stack", "another thread's parking"])
@pytest.mark.parametrize("where", ["before the lend", "half-way through the lend", "once lent"])
def test_a_lend_interrupted_on_the_fast_path_strands_nothing(
    make_pool, connector, monkeypatch, source, where
):
    # An asynchronous exception while an idle or a parked connection is being lent: the
    # connection goes back on the idle stack instead of being lost.
    pool = make_pool(pool_size=2, max_overflow=0, timeout=2)
    first = pool.checkout()
    if source == "the idle stack":
        pool.checkin(first, first.lease)
    else:  # parked by a thread that has ended: any borrower takes it
        parker = threading.Thread(target=lambda: pool.park(first, first.lease))
        first.holder = parker
        parker.start()
        parker.join()
    interrupt_the_lend(pool, monkeypatch, where)
    with pytest.raises(Interrupted):
        pool.checkout()
    monkeypatch.undo()
    stats = pool.get_stats()
    assert stats["total"] == 1 == stats["idle_connections"]
    assert stats["checked_out"] == 0
    assert pool._out == set() and list(pool._idle) == [first]
    # The whole limit can be checked out, and not one more.
    held = [pool.checkout(timeout=1), pool.checkout(timeout=1)]
    assert first in held
    with pytest.raises(PoolTimeoutError):
        pool.checkout(timeout=0.05)
    for record in held:
        pool.checkin(record, record.lease)
