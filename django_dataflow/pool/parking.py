"""Thread affinity: a borrower *parks* its connection instead of checking it in.

Why it exists: the cheapest connection is the one the thread already holds. A web worker
thread serves request after request; handing its connection back to the shared pool at the
end of each request and taking one out again at the start of the next costs bookkeeping
(a lock, the lease, the idle stack) that a persistent connection never pays. HikariCP
solves this with its ConcurrentBag: each thread remembers the connections it used last and
tries them first, while every connection stays available to everybody.

Here, a parked connection:

* stays with its holder (the lease is kept), so the holder takes it back with a single
  dictionary ``pop`` and no lock (:meth:`ParkingMixin.unpark`);
* counts as idle: any other borrower takes it, under the pool lock, when no idle
  connection is left, before opening a new one (one whose holder thread has ended
  first, else the most recently parked), so sessions follow the requests in flight,
  not the number of threads; the housekeeper closes it when it expires or idled too
  long as overflow;
* is clean: it is parked only when no transaction is open on it, so whoever takes it
  needs no reset.

The claim is the ``pop`` from ``_parked``: atomic, so exactly one of the holder, another
borrower and the housekeeper wins a parked connection. Everybody but the holder pops
only under the pool lock, and a record changes hands (a new lease) under the same lock.
A holder whose connection was taken simply checks out another one. ``_parked`` is keyed
by the lease of the checkout that parked the connection, never by the connection: a
lease is never reused, so a holder can only ever claim its own parking. (Keyed by
connection, a holder whose connection was taken, used and parked again by another
thread would pop that other thread's parking.)
"""

from __future__ import annotations

import time
from bisect import bisect_left

from django_dataflow.pool.base import PoolState
from django_dataflow.pool.record import ConnectionRecord
from django_dataflow.pool.stats import USE_BUCKETS, USE_ENDED


class ParkingMixin(PoolState):
    """The parking part of ConnectionPool: the holder's side (park, take back, give
    back). The claims other borrowers make under the lock (``_take_parked`` and
    friends) are in base.py, since checkout and the openers make them too; the
    housekeeper's pass over parked connections is in housekeeping.py."""

    def park(self, record: ConnectionRecord, lease: int) -> bool:
        """Keep ``record`` for the holder of ``lease``'s next checkout, and lendable to
        anyone meanwhile. False when it must be checked in instead: requests are waiting
        (they get it through checkin, in their order), the pool is closing, the
        connection was invalidated, or a transaction is open on it."""
        if self._waiters or self._closed or record.lease != lease or record.invalidated:
            return False
        try:
            if not self.connector.is_clean(record.connection):
                return False
        except Exception:  # whatever is wrong with it, checkin deals with it
            return False
        record.idle_since = now = time.monotonic()
        record.parks += 1  # counted as a checkin
        checked_out_at = record.last_checkout_at
        if checked_out_at is not None:
            # A park ends a use (usage.py): the use-time histogram, inlined (a call per
            # request; PoolStats.record_use says why it may run outside the lock).
            seconds = now - checked_out_at
            use_time = self.stats.use_time
            use_time.counts[bisect_left(USE_BUCKETS, seconds)] += 1
            use_time.total += seconds
            record.info[USE_ENDED] = checked_out_at
        self._parked[lease] = record
        # A borrower may have queued (or the pool closed) after the check above and
        # before the insert, without seeing the insert: settle under the lock.
        if self._waiters or self._closed:
            self._settle_parked()
        return True

    def unpark(self, record: ConnectionRecord, lease: int) -> bool:
        """The holder takes its parked connection back. False when somebody else took
        it, or when it needs the checks of a full checkout (expired, invalidated, due a
        pre-ping): then it is checked in and the caller checks out normally."""
        if self._parked.pop(lease, None) is not record:
            return False  # taken (a lease is never reused: no one else's parking)
        now = time.monotonic()
        if (
            record.invalidated is None
            and now < record.recycle_deadline
            # (_ping_due, its common answer inlined: a call per take-back)
            and (
                (record.generation == self._generation and not self.pre_ping)
                or not self._ping_due(record, now)
            )
        ):
            record.unparks += 1  # counted as a checkout
            record.last_checkout_at = now
            return True
        record.parks -= 1  # the checkin below counts instead
        self.checkin(record, lease, in_hand=True)
        return False

    def give_back_parked(self, record: ConnectionRecord, lease: int) -> None:
        """The holder gives its parked connection back for good (its wrapper closes).
        Claimed first, as ``unpark`` claims: if another borrower took it meanwhile,
        there is nothing of the holder's left to give back."""
        if self._parked.pop(lease, None) is not record:
            return
        record.parks -= 1  # the checkin below counts instead
        self.checkin(record, lease, in_hand=True)

    # -- under the lock ------------------------------------------------------------------

    def _take_parked_of_ended_thread(self) -> ConnectionRecord | None:
        """Under the lock: claim a connection whose holder thread has ended (it will never
        take it back), or None. A server that runs each request in a new thread (Django
        under ASGI runs a request's sync code in a thread of its own) parks every
        connection for a thread that is about to end."""
        try:
            parked = tuple(self._parked.items())
        except RuntimeError:  # a holder popped its parking meanwhile
            return None
        for lease, record in parked:
            holder = record.holder
            if (
                holder is not None
                and not holder.is_alive()
                and self._parked.pop(lease, None) is record
            ):
                return record
        return None

    def _settle_parked(self) -> None:
        with self._lock:
            closing = self._take_all_parked() if self._closed else []
            self._hand_parked_to_waiters()
        for record in closing:
            self._close_quietly(record)
