"""A parked connection given back by its lease (``checkin``: a garbage-collected
wrapper's return, or its holder's close) racing another thread that takes it (at the
pool's limit) and starts a transaction on it. The checkin must look at the lease and at
the parking under the pool's lock: otherwise another thread can take the connection
between the two looks, and the checkin then resets (rolls back) that thread's
transaction.

The window is a few bytecodes wide, so the test widens it: the pool's ``_parked`` dict
is replaced by a dict that pauses the returning thread at its first look at the
parking made outside the pool's lock (a timing gate only; every operation still
behaves as a dict's, as the engine's gated-reset tests do). Inside the lock there is
no window to widen (and pausing there would only block the other thread)."""

from __future__ import annotations

import threading

import pytest

from tests.backends.helpers import AT_REST, Stepper, at_rest, make_wrapper, request

pytestmark = pytest.mark.django_db(transaction=True)

OPTIONS = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 5}


class GatedParked(dict):
    """The pool's ``_parked``: pauses ``gated`` at its first look made outside the pool's
    lock (``in`` or truth value), once."""

    def __init__(self, pool_lock) -> None:
        super().__init__()
        self.pool_lock = pool_lock
        self.gated: threading.Thread | None = None
        self.in_gate = threading.Event()
        self.gate = threading.Event()

    def _pause(self) -> None:
        if threading.current_thread() is self.gated and not self.pool_lock.locked():
            self.gated = None
            self.in_gate.set()
            assert self.gate.wait(10), "the gate never opened"

    def __contains__(self, key) -> bool:
        self._pause()
        return super().__contains__(key)

    def __len__(self) -> int:
        self._pause()
        return super().__len__()


def run_race(give_back):
    """The holder's connection is parked; ``give_back(wrapper, record, lease)`` runs in
    the holder's thread, paused at its first unlocked look at the parking, while another
    thread takes the connection and writes in a transaction. Returns (the rows that
    thread committed, the pool at rest)."""
    holder, taker = Stepper(), Stepper()
    try:
        setup = make_wrapper(**OPTIONS)
        with setup.cursor() as cursor:
            cursor.execute("DELETE FROM testapp_item")
        setup.close()
        pool = setup.dataflow_pool
        gated = GatedParked(pool._lock)
        pool._parked = gated  # (empty now: nothing parked)

        box = {}
        holder.call(lambda: box.setdefault("a", make_wrapper(**OPTIONS)))
        holder.call(lambda: request(box["a"]))  # parked for the holder's thread
        lease = box["a"]._dataflow_lease
        record, token = lease.record, lease.token
        gated.gated = holder

        giving = threading.Thread(
            target=lambda: holder.call(lambda: give_back(box["a"], record, token)), daemon=True
        )
        giving.start()
        gated.in_gate.wait(2)  # paused there, if the give-back looks without the lock

        def take_and_write():
            b = box.setdefault("b", make_wrapper(**OPTIONS))
            b.set_autocommit(False)  # takes the parked connection (at the limit)
            with b.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO testapp_item (name, active) VALUES (%s, %s)", ["raced", True]
                )

        taker.call(take_and_write)
        gated.gate.set()
        giving.join(10)

        def commit_and_count():
            b = box["b"]
            b.commit()
            b.set_autocommit(True)
            with b.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM testapp_item WHERE name = %s", ["raced"])
                return cursor.fetchone()[0]

        count = taker.call(commit_and_count)
        taker.call(box["b"].close)
        holder.call(box["a"].close)
        return count, at_rest(pool)
    finally:
        holder.stop()
        taker.stop()


def test_a_checkin_by_lease_never_resets_a_parked_connection_another_thread_took():
    # The pool's own path: a collected wrapper's lease returned by the housekeeper.
    count, rest = run_race(
        lambda wrapper, record, lease: wrapper.dataflow_pool.checkin(record, lease)
    )
    assert count == 1, "the other thread's committed row is gone: its transaction was rolled back"
    assert rest == AT_REST


def test_closing_a_parked_wrapper_never_resets_a_connection_another_thread_took():
    count, rest = run_race(lambda wrapper, record, lease: wrapper.close())
    assert count == 1, "the other thread's committed row is gone: its transaction was rolled back"
    assert rest == AT_REST
