"""Races between a return and the rest of the pool, and the counts of a checkout whose
connection is replaced (real sqlite3 connections, real threads; a gated reset holds a
return between its start and its end)."""

from __future__ import annotations

import threading
import time

from django_dataflow.pool import ConnectionPool
from tests.pool.connectors import SQLiteFileConnector


def run_in_thread(function, gate_reset_of=None):
    """Start ``function`` in a new thread; with ``gate_reset_of`` (a GatedResetConnector)
    that thread's reset waits for the connector's gate. Returns (thread, result dict)."""
    result = {}

    def target():
        try:
            result["value"] = function()
        except BaseException as error:
            result["error"] = error

    thread = threading.Thread(target=target)
    if gate_reset_of is not None:
        gate_reset_of.gated.add(thread)
    thread.start()
    return thread, result


def test_a_return_racing_close_leaves_no_connection_open(gated_connector):
    connector = gated_connector
    pool = ConnectionPool(connector, name="t", pool_size=2, max_overflow=0, pre_ping=False)
    record = pool.checkout()
    # The return sees an open pool, then resets the connection outside the lock ...
    thread, result = run_in_thread(lambda: pool.checkin(record, record.lease), connector)
    assert connector.in_reset.wait(5)
    pool.close()  # ... while the pool is closed (shutdown, a test's teardown)
    connector.gate.set()
    thread.join(5)

    assert "error" not in result
    assert (connector.opened, connector.closed) == (1, 1)
    assert pool.get_stats()["total"] == 0


def test_a_connection_recycled_at_checkout_counts_one_checkout(make_pool):
    pool = make_pool(pool_size=1, max_overflow=0, recycle=0.05)
    record = pool.checkout()
    pool.checkin(record, record.lease)
    time.sleep(0.1)  # it expires while idle
    replacement = pool.checkout()
    assert replacement is not record
    pool.checkin(replacement, replacement.lease)

    stats = pool.get_stats()
    assert (stats["checkouts"], stats["checkins"]) == (2, 2)


def test_a_connection_that_failed_its_pre_ping_counts_one_checkout(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, pre_ping=True, pre_ping_bypass=0)
    record = pool.checkout()
    pool.checkin(record, record.lease)
    connector.dead.add(id(record.connection))  # the server ended it while idle
    replacement = pool.checkout()
    assert replacement is not record
    pool.checkin(replacement, replacement.lease)

    stats = pool.get_stats()
    assert (stats["checkouts"], stats["checkins"]) == (2, 2)


def test_the_parks_of_a_connection_replaced_at_checkout_stay_counted(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0, pre_ping=True, pre_ping_bypass=0)
    record = pool.checkout()  # A
    assert pool.park(record, record.lease)  # A's park counts as its checkin
    thread, result = run_in_thread(pool.checkout)  # B, at the limit, takes it
    thread.join(5)
    assert result["value"] is record
    pool.checkin(record, record.lease)
    connector.dead.add(id(record.connection))
    replacement = pool.checkout()  # C: replaced
    pool.checkin(replacement, replacement.lease)

    stats = pool.get_stats()
    assert (stats["checkouts"], stats["checkins"]) == (3, 3)


def test_an_orphan_returned_while_a_borrower_reclaims_it_is_returned_once(gated_connector):
    """A thread ended holding a connection; its wrapper's finalizer queued the checkout
    for the housekeeper. While the housekeeper's return resets it (a slow ROLLBACK), a
    borrower at the limit must not reclaim the same checkout, get the connection and
    start a transaction that the housekeeper's reset then rolls back."""
    connector = gated_connector
    setup = ConnectionPool(connector, name="t", pool_size=1, max_overflow=0, pre_ping=False)
    setup.checkout().connection.execute("CREATE TABLE t (x INTEGER)")
    setup.close()
    pool = ConnectionPool(connector, name="t", pool_size=1, max_overflow=0, pre_ping=False)

    dead, result = run_in_thread(pool.checkout)
    dead.join(5)
    record = result["value"]
    pool.return_later(record, record.lease)  # what the finalizer does
    housekeeper, _ = run_in_thread(pool.maintain, connector)
    assert connector.in_reset.wait(5)

    wrote, done = threading.Event(), threading.Event()

    def borrow():
        mine = pool.checkout(timeout=5)
        mine.connection.execute("BEGIN")
        mine.connection.execute("INSERT INTO t VALUES (1)")
        wrote.set()
        assert done.wait(5)
        still_open = mine.connection.in_transaction
        if still_open:
            mine.connection.execute("COMMIT")
        pool.checkin(mine, mine.lease)
        return still_open

    borrower, outcome = run_in_thread(borrow)
    wrote.wait(0.5)  # the borrower waits for the housekeeper's return: it writes nothing yet
    connector.gate.set()
    housekeeper.join(5)
    done.set()
    borrower.join(5)

    assert outcome.get("value") is True, "the borrower's transaction was rolled back"
    stats = pool.get_stats()
    assert stats["checkouts"] == stats["checkins"] == 2
    pool.close()


class SlowCloseConnector(SQLiteFileConnector):
    """close() waits for ``gate`` (a slow TLS shutdown or COM_QUIT); counts the sessions
    open at once."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.in_close = threading.Event()
        self.open_now = 0
        self.most_open = 0

    def connect(self):
        connection = super().connect()
        with self.lock:
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
        return connection

    def close(self, connection) -> None:
        self.in_close.set()
        assert self.gate.wait(10)
        super().close(connection)
        with self.lock:
            self.open_now -= 1


def test_a_discarded_connection_is_closed_before_its_slot_is_reused(tmp_path):
    connector = SlowCloseConnector(tmp_path / "pool.sqlite3")
    pool = ConnectionPool(connector, name="t", pool_size=1, max_overflow=0, pre_ping=False)
    record = pool.checkout()
    returner, _ = run_in_thread(lambda: pool.checkin(record, record.lease, discard_reason="broken"))
    assert connector.in_close.wait(5)  # its session is still open on the server
    waiter, result = run_in_thread(lambda: pool.checkout(timeout=5))
    time.sleep(0.2)
    assert connector.most_open == 1, "a second connection opened while the first closed"
    connector.gate.set()
    returner.join(5)
    waiter.join(5)
    other = result["value"]  # the slot, once free
    assert connector.most_open == 1
    pool.checkin(other, other.lease)
    pool.close()
