"""Thread affinity in the engine: park, unpark, and everybody else taking parked
connections (real sqlite3 connections, real threads)."""

from __future__ import annotations

import queue
import threading
import time

import pytest


def park(pool, record):
    assert pool.park(record, record.lease)
    return record.lease


def checkout_in_another_thread(pool):
    taken = []
    thread = threading.Thread(target=lambda: taken.append(pool.checkout()))
    thread.start()
    thread.join()
    return taken[0]


def test_the_holder_takes_its_parked_connection_back(make_pool, connector):
    pool = make_pool(pool_size=2)
    record = pool.checkout()
    lease = park(pool, record)

    stats = pool.get_stats()
    assert (stats["checked_out"], stats["idle_connections"]) == (0, 1)
    assert stats["checkins"] == 1
    assert pool.unpark(record, lease)
    stats = pool.get_stats()
    assert (stats["checked_out"], stats["idle_connections"]) == (1, 0)
    assert (stats["checkouts"], stats["thread_reuses"]) == (2, 1)
    assert record.lease == lease  # the same checkout goes on
    pool.checkin(record, lease)
    stats = pool.get_stats()
    assert stats["checkouts"] == stats["checkins"] == 2
    assert connector.opened == 1


def test_below_the_limit_another_thread_takes_a_parked_one_rather_than_open_one(
    make_pool, connector
):
    pool = make_pool(pool_size=2, max_overflow=0)
    record = pool.checkout()
    lease = park(pool, record)

    assert checkout_in_another_thread(pool) is record
    assert connector.opened == 1
    assert not pool.unpark(record, lease), "taken: the holder checks out another"


def test_sessions_follow_the_requests_in_flight_not_the_threads(make_pool, connector):
    """16 queue-fed worker threads (waitress, mod_wsgi, Celery threads) with 2 requests
    in flight hold about 2 connections, not 16: a thread without a parked connection
    of its own takes an idle one parked by another before it opens one."""
    pool = make_pool(pool_size=10, max_overflow=10, timeout=5)
    tasks: queue.Queue = queue.Queue()
    in_flight = threading.Semaphore(2)
    done = []

    def worker():
        local = None  # (record, lease) parked by this thread, as a wrapper keeps it
        while (task := tasks.get()) is not None:
            mine = local is not None and pool.unpark(*local)
            record = local[0] if mine else pool.checkout()
            time.sleep(0.01)  # the request's queries
            local = (record, record.lease) if pool.park(record, record.lease) else None
            if local is None:
                pool.checkin(record, record.lease)
            done.append(task)
            in_flight.release()
        if local is not None:
            pool.give_back_parked(*local)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2
    sent = 0
    while time.monotonic() < deadline:
        in_flight.acquire()
        tasks.put(sent)
        sent += 1
    for _ in threads:
        tasks.put(None)
    for thread in threads:
        thread.join(10)
    assert len(done) == sent > 100
    assert connector.opened <= 2 + 2, f"{connector.opened} connections for 2 in flight"


def test_below_the_limit_a_connection_parked_by_an_ended_thread_is_taken(make_pool, connector):
    """A server that runs each request in a thread of its own (Django under ASGI) parks
    every connection for a thread about to end: the next request takes it, not a new
    connection."""
    pool = make_pool(pool_size=4, max_overflow=2)
    records = []

    def request():
        record = pool.checkout()
        records.append(record)
        park(pool, record)

    for _ in range(10):  # one request after another, each in a new thread
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()

    assert connector.opened == 1
    assert all(record is records[0] for record in records)
    stats = pool.get_stats()
    assert stats["checkouts"] == stats["checkins"] == 10


def test_at_the_limit_another_thread_takes_a_parked_connection(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=0)
    record = pool.checkout()
    lease = park(pool, record)

    assert checkout_in_another_thread(pool) is record
    assert record.lease != lease
    assert connector.opened == 1
    assert not pool.unpark(record, lease), "the holder must not get it back"
    pool.checkin(record, lease)  # a stale lease: ignored
    assert record.lease != 0
    pool.checkin(record, record.lease)
    stats = pool.get_stats()
    assert stats["checkouts"] == stats["checkins"] == 2
    assert (stats["checked_out"], stats["idle_connections"]) == (0, 1)


def test_a_waiter_gets_a_connection_parked_while_it_waits(make_pool):
    pool = make_pool(pool_size=1, max_overflow=0, timeout=5)
    record = pool.checkout()
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.checkout()))
    waiter.start()
    deadline = time.monotonic() + 5
    while not pool.get_stats()["wait_queue"] and time.monotonic() < deadline:
        time.sleep(0.001)
    lease = record.lease

    # Requests are waiting: the holder checks in (to the oldest waiter) instead.
    assert not pool.park(record, lease)
    pool.checkin(record, lease)
    waiter.join(5)
    assert got == [record]


def test_a_connection_parked_just_as_a_waiter_queues_goes_to_the_waiter(make_pool):
    # The race the park re-check is for: the park's first look saw no waiter, a borrower
    # queued before the insert. Played in order here by queueing behind park's back.
    pool = make_pool(pool_size=1, max_overflow=0, timeout=5)
    record = pool.checkout()
    lease = record.lease
    waiters = pool._waiters

    class QueueOnFirstLook:
        # Reports "no waiter" once, as the first check would have seen, then the truth.
        looked = False

        def __bool__(self) -> bool:
            if not self.looked:
                self.looked = True
                return False
            return bool(waiters)

        def __len__(self) -> int:
            return len(waiters) if self.looked else 0

        def __getattr__(self, name):
            return getattr(waiters, name)

    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.checkout()))
    waiter.start()
    deadline = time.monotonic() + 5
    while not waiters and time.monotonic() < deadline:
        time.sleep(0.001)
    pool._waiters = QueueOnFirstLook()
    try:
        assert pool.park(record, lease)
    finally:
        pool._waiters = waiters
    waiter.join(5)
    assert got == [record], "the waiter must get the connection parked behind it"
    assert not pool.unpark(record, lease)


def test_a_connection_with_an_open_transaction_is_not_parked(make_pool):
    pool = make_pool(pool_size=1)
    record = pool.checkout()
    record.connection.execute("BEGIN")
    assert not pool.park(record, record.lease)
    pool.checkin(record, record.lease)  # reset rolls it back
    assert not record.connection.in_transaction


def test_an_invalidated_connection_is_not_parked(make_pool):
    pool = make_pool(pool_size=1)
    record = pool.checkout()
    record.invalidate("test")
    assert not pool.park(record, record.lease)


@pytest.mark.parametrize("why", ["invalidated", "expired", "older_generation"])
def test_an_unfit_parked_connection_goes_through_a_full_checkout(make_pool, connector, why):
    pool = make_pool(pool_size=1, recycle=3600)
    record = pool.checkout()
    lease = park(pool, record)
    if why == "invalidated":
        record.invalidate("test")
    elif why == "expired":
        record.recycle_at = time.monotonic() - 1
    else:
        pool.invalidate_older_connections()

    assert not pool.unpark(record, lease)
    fresh = pool.checkout()
    if why == "older_generation":
        assert fresh is record  # checked (pinged), not replaced
        assert connector.pings == 1
    else:
        assert fresh is not record
        assert connector.closed == 1
    pool.checkin(fresh, fresh.lease)
    stats = pool.get_stats()
    assert stats["checkouts"] == stats["checkins"] == 2


def test_pre_ping_applies_to_a_parked_connection_idle_past_the_bypass(make_pool, connector):
    pool = make_pool(pool_size=1, pre_ping=True, pre_ping_bypass=0.05)
    record = pool.checkout()
    lease = park(pool, record)
    assert connector.pings == 0
    time.sleep(0.1)
    connector.dead.add(id(record.connection))

    assert not pool.unpark(record, lease)
    fresh = pool.checkout()
    assert fresh is not record, "a dead parked connection is replaced"
    assert pool.get_stats()["pre_ping_failures"] == 1


def test_a_parked_connection_inside_the_bypass_is_taken_back_without_a_ping(make_pool, connector):
    pool = make_pool(pool_size=1, pre_ping=True, pre_ping_bypass=60)
    record = pool.checkout()
    lease = park(pool, record)
    assert pool.unpark(record, lease)
    assert connector.pings == 0


def test_closing_the_pool_closes_parked_connections(make_pool, connector):
    pool = make_pool(pool_size=2)
    record = pool.checkout()
    lease = park(pool, record)
    pool.close()
    assert connector.closed == 1
    assert not pool.unpark(record, lease)
    assert pool.get_stats()["total"] == 0


def test_housekeeping_closes_parked_overflow_and_expired_connections(make_pool, connector):
    pool = make_pool(pool_size=1, max_overflow=2, overflow_idle_timeout=0.05, recycle=3600)
    records = [pool.checkout() for _ in range(3)]
    leases = [park(pool, record) for record in records]
    records[0].recycle_at = time.monotonic() - 1  # expired
    time.sleep(0.1)

    pool.maintain()

    # The expired one, and one overflow connection; pool_size (1) stays.
    assert connector.closed == 2
    stats = pool.get_stats()
    assert stats["total"] == 1
    assert stats["checkouts"] == stats["checkins"] == 3
    kept = [r for r, lease in zip(records, leases, strict=True) if pool.unpark(r, lease)]
    assert len(kept) == 1 and kept[0] is not records[0]


def test_a_parked_connection_of_an_ended_thread_becomes_idle_without_a_warning(make_pool):
    pool = make_pool(pool_size=1)
    parked = []

    def request():
        record = pool.checkout()
        parked.append(park(pool, record))

    thread = threading.Thread(target=request)
    thread.start()
    thread.join()
    pool.maintain()

    stats = pool.get_stats()
    assert stats["reclaimed_from_dead_threads"] == 0  # it was given back properly
    assert (stats["checked_out"], stats["idle_connections"]) == (0, 1)
    assert pool._idle and not pool._parked


def test_a_parked_connection_checked_in_by_its_lease_is_claimed_first(make_pool):
    # What the housekeeper does when the holder's wrapper was garbage-collected.
    pool = make_pool(pool_size=1)
    record = pool.checkout()
    lease = park(pool, record)
    pool.checkin(record, lease)
    stats = pool.get_stats()
    assert stats["checkouts"] == stats["checkins"] == 1
    assert (stats["checked_out"], stats["idle_connections"]) == (0, 1)
    assert not pool.unpark(record, lease)


def test_no_two_borrowers_ever_hold_one_connection(make_pool, connector):
    """Eight threads park, take back, steal and check in as fast as they can on three
    connections; every use marks the connection busy and fails if it already is."""
    pool = make_pool(pool_size=2, max_overflow=1, timeout=10)
    busy: set[int] = set()
    busy_lock = threading.Lock()
    errors: list[str] = []
    rounds = 1500

    def use(record):
        with busy_lock:
            if id(record) in busy:
                errors.append("a connection was lent twice")
            busy.add(id(record))
        record.connection.execute("SELECT 1")
        with busy_lock:
            busy.discard(id(record))

    def worker(n: int) -> None:
        mine = None  # (record, lease) parked by this thread
        for i in range(rounds):
            if mine is not None and pool.unpark(*mine):
                record, lease = mine
            else:
                record = pool.checkout()
                lease = record.lease
            use(record)
            if (i + n) % 7 == 0 or not pool.park(record, lease):
                pool.checkin(record, lease)
                mine = None
            else:
                mine = (record, lease)
        if mine is not None:
            pool.checkin(*mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    stats = pool.get_stats()
    assert stats["checkouts"] == stats["checkins"] == 8 * rounds
    assert stats["checked_out"] == 0
    assert stats["total"] <= 3
    assert stats["thread_reuses"] > 0
    assert connector.opened <= 3


def test_a_holder_never_claims_a_parking_that_is_not_its_own(make_pool):
    # Its connection was taken, used and parked again by the thief: the connection is
    # parked, but not by this holder, which must not take it (nor lose it for the thief).
    pool = make_pool(pool_size=1, max_overflow=0)
    record = pool.checkout()
    first_lease = park(pool, record)
    assert checkout_in_another_thread(pool) is record
    second_lease = park(pool, record)

    assert not pool.unpark(record, first_lease)
    assert pool.get_stats()["idle_connections"] == 1, "the thief's parking must survive"
    assert pool.unpark(record, second_lease)
    pool.checkin(record, second_lease)
    stats = pool.get_stats()
    assert stats["checkouts"] == stats["checkins"] == 3
    assert (stats["checked_out"], stats["idle_connections"]) == (0, 1)
