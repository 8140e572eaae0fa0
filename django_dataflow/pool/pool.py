"""ConnectionPool: checkout, checkin, overflow, waiters, recycle, pre-ping, invalidation.

How it stays correct and cheap:

* One lock guards only bookkeeping (counts, the idle stack, the waiter queue). Opening,
  pinging, resetting and closing connections happen outside it, so a hanging server
  never blocks other borrowers.
* The connection limit is counted *before* connecting: a borrower reserves a slot under
  the lock, then connects. A failed connect gives the slot back; a discarded connection
  gives it back once it is closed.
* Waiters queue in arrival order. A returned connection, or a freed slot, is handed
  straight to the oldest waiter under the lock, so a waiter that times out either got
  a grant (and uses it) or removes itself from the queue: nothing is lost in between.
* Idle connections form a stack (last returned, first reused): hot connections stay hot
  and surplus connections sink to the bottom, where the housekeeper closes overflow
  connections that idled longer than ``overflow_idle_timeout``.

This module is the borrowing path: checkout, checkin and what they need. The rest of
ConnectionPool comes from parking.py (thread affinity), opening.py (connections opened
for waiters in the background), housekeeping.py and introspection.py, all built on the
state and helpers of base.py (where the constructor is).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

from django_dataflow.pool.errors import PoolClosedError
from django_dataflow.pool.housekeeping import HousekeepingMixin
from django_dataflow.pool.introspection import IntrospectionMixin
from django_dataflow.pool.opening import OpeningMixin
from django_dataflow.pool.record import ConnectionRecord
from django_dataflow.pool.reporting import note_wait, timeout_error
from django_dataflow.pool.usage import UsageMixin
from django_dataflow.pool.waiting import MAY_CONNECT, POOL_CLOSED, ConnectFailed, Token, Waiter

logger = logging.getLogger("django_dataflow.pool")


class ConnectionPool(UsageMixin, OpeningMixin, HousekeepingMixin, IntrospectionMixin):
    """A pool of physical connections made by ``connector``.

    ``pool_size`` connections are kept open once made; up to ``max_overflow`` more are
    opened under load and closed again after idling ``overflow_idle_timeout`` seconds.
    With ``thread_affinity``, a borrower may park its connection between uses instead of
    checking it in (see ``parking.py``). Connections for waiting borrowers are opened in
    the background, ``max_opening`` at a time (see ``opening.py``). The constructor and
    its options are in ``base.py``.
    """

    # -- borrowing -------------------------------------------------------------------

    def checkout(self, timeout: float | None = None) -> ConnectionRecord:
        """Lend a ready connection to the calling thread.

        Raises PoolTimeoutError when none is free within ``timeout`` seconds (the pool's
        default when None), and any error of the connector when a new connection fails
        while none is open.
        """
        started = time.monotonic()
        thread = threading.current_thread()
        limit = self.timeout if timeout is None else timeout
        grant: ConnectionRecord | Literal[Token.MAY_CONNECT] | None
        with self._lock:
            if self._closed:
                raise PoolClosedError(f"The connection pool {self.name!r} is closed.")
            if self._idle and not self._waiters:
                # The common case: the most recently returned connection.
                grant = self._idle.pop()
                self._lend_or_put_back(grant, thread, started)
            elif (
                self._parked
                and not self._waiters
                and (grant := self._take_parked_of_ended_thread() or self._take_parked(newest=True))
            ):
                # An idle connection parked by another thread (one that has ended first:
                # nobody will take it back) beats a new one: sessions follow the
                # requests in flight, not the number of threads (see parking.py).
                self._lend_or_put_back(grant, thread, started)
            elif not self._total:
                # Nothing open or opening, so nothing can come back: connect right here.
                self._total += 1
                grant = MAY_CONNECT
            else:
                grant = None
                waiter = self._queue(thread, started)
        if grant is None:
            grant = self._wait(waiter, started, limit)
        if grant is MAY_CONNECT:
            record = self._open_for(thread, started, limit)
        else:
            lease = grant.lease
            try:
                record = self._make_ready(grant, thread, started, limit)
            except BaseException:
                # Interrupted while it was ours (a ping, an async exception): not lost.
                self.checkin(grant, lease, discard_reason="interrupted", in_hand=True)
                raise
        try:
            if self.leaks.threshold:
                self.leaks.remember_checkout(record)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("Checked out a connection of %r (%s).", self.name, record)
        except BaseException:
            self.checkin(record, record.lease, in_hand=True)
            raise
        return record

    def _queue(self, thread: threading.Thread, started: float) -> Waiter:
        """Under the lock: join the queue. Wait for whatever comes first: a connection
        given back, a parked one, or one the openers make for the queue (opening.py)."""
        waiter = Waiter(thread, started)
        self._waiters.append(waiter)
        if self._total >= self.max_connections:
            waiter.abandoned = self._claim_abandoned(thread)
        waiter.openers = self._serve_queue()
        return waiter

    def _wait(
        self, waiter: Waiter, started: float, timeout: float
    ) -> ConnectionRecord | Literal[Token.MAY_CONNECT]:
        """Outside the lock, queued: start the openers reserved for the queue, return
        connections of ended threads and orphans, then wait. Whatever fails or
        interrupts on the way takes the waiter out of the queue (or gives back what it
        was granted)."""
        try:
            # No thread for the queue's connect: connect here instead, in a slot of our
            # own, unless something was handed over meanwhile.
            if (
                waiter.openers
                and self._start_openers(waiter.openers)
                and self._connect_instead_of_waiting(waiter)
            ):
                return MAY_CONNECT
            if waiter.abandoned:
                self._return_abandoned(waiter.abandoned)
            self._return_orphans()
        except BaseException:
            self._abandon_wait(waiter)
            raise
        return self._wait_for_grant(waiter, started, timeout)

    def _connect_instead_of_waiting(self, waiter: Waiter) -> bool:
        with self._lock:
            if (
                waiter.grant is not None
                or self._closed
                or self._total >= self.max_connections
                or waiter not in self._waiters
            ):
                return False
            self._waiters.remove(waiter)
            self._total += 1
            return True

    def checkin(
        self,
        record: ConnectionRecord,
        lease: int,
        *,
        discard_reason: str | None = None,
        in_hand: bool = False,
    ) -> None:
        """Take a connection back from the borrower holding checkout ``lease``.

        A stale lease (already returned, or reclaimed from a dead thread) is ignored. The
        connection is reset, then handed to the oldest waiter or kept idle; it is closed
        instead when ``discard_reason`` is given, it was invalidated, it expired, or the
        reset failed. ``in_hand``: the caller holds the connection, certainly not parked
        (the borrower itself, or a claim made under the lock): no claim needed.
        """
        if record.lease != lease:
            return
        if self.thread_affinity and not in_hand:
            # It may be parked (checked in by lease: its wrapper was garbage-collected,
            # say). Claim it under the lock, where a borrower's take and lend happen
            # together: looked at without it, another thread could take and lend it
            # between two looks, and this checkin would reset (ROLLBACK) that thread's
            # work. (Only for a return by lease: the borrowers' own returns are in hand.)
            with self._lock:
                if record.lease != lease:
                    return  # taken and lent meanwhile
                if self._parked.pop(lease, None) is record:
                    record.parks -= 1  # this checkin counts instead of the park
        now = time.monotonic()
        reason = discard_reason or record.invalidated
        if reason is None:
            if self._closed:
                reason = "pool_closed"
            elif now >= record.recycle_deadline:
                reason = "recycle"
            else:
                try:
                    clean = self.connector.reset(record.connection)
                except Exception:
                    clean = False
                except BaseException:  # interrupted: its state is unknown
                    self.checkin(record, lease, discard_reason="interrupted", in_hand=True)
                    raise
                if not clean:
                    reason = "reset_failed"
        if record.leak_reported:
            self.leaks.report_return(self, record, now)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Checked in a connection of %r (%s).", self.name, reason or "kept")
        with self._lock:
            if record.lease != lease:
                return
            self._end_lease(record)
            self._checkins += 1
            self._record_use(record, now)
            if reason is None and self._closed:
                # close() ran while this connection was being reset: it must not be
                # left idle in a closed pool, open for ever.
                reason = "pool_closed"
            if reason is None:
                record.idle_since = now
                if self._waiters:
                    self._lend_to_oldest_waiter(record, now)
                else:
                    self._idle.append(record)
                return
        self._discard([(record, reason)])

    def invalidate_older_connections(self) -> None:
        """Make every connection opened so far be pinged before its next use.

        Called when one connection died of a disconnect: its siblings may be dead too
        (a server restart), but each is checked rather than dropped blindly.
        """
        with self._lock:
            self._generation += 1

    # -- internals of checkout -------------------------------------------------------

    def _wait_for_grant(self, waiter: Waiter, started: float, timeout: float) -> ConnectionRecord:
        remaining = min(max(0.0, started + timeout - time.monotonic()), threading.TIMEOUT_MAX)
        try:
            if self.overflow_delay:
                remaining = self._wait_for_overflow(waiter, remaining)
            waiter.sleep(remaining)
            with self._lock:
                grant = waiter.grant
                now = time.monotonic()
                waited = now - started
                self.stats.record_wait(waited)
                note_wait(waited)
                if grant is None:
                    # Nothing was handed over: leave the queue. (Anything handed over
                    # before we took the lock is in ``grant`` and gets used.)
                    self._waiters.remove(waiter)
                    # A parked connection (one parked after the queue was served)
                    # rather than a timeout.
                    grant = waiter.grant = self._take_parked() if self._parked else None
                    if grant is not None:
                        self._lend(grant, waiter.thread, now)
                    else:
                        self.stats.counters["timeouts"] += 1
                        error = timeout_error(self, waited, self._connect_error)
        except BaseException:
            # Interrupted (KeyboardInterrupt, an async exception): leave the queue, and
            # give back whatever was handed over meanwhile, or the next connection
            # returned would go to a waiter that is gone, and be lost for good.
            self._abandon_wait(waiter)
            raise
        if grant is None:
            logger.warning("%s", error, extra=error.log_extra())
            if self.events is not None:
                try:
                    self.events.timed_out(self, waited, str(error))
                except Exception:  # the borrower must still get its PoolTimeout
                    logger.exception("A pool_timeout receiver of %r failed.", self.name)
            raise error from error.last_connect_error
        if grant is POOL_CLOSED:
            raise PoolClosedError(f"The connection pool {self.name!r} was closed.")
        if isinstance(grant, ConnectFailed):
            raise grant.error
        return grant

    def _abandon_wait(self, waiter: Waiter) -> None:
        # A waiter's grant is a connection, a failure or POOL_CLOSED (never MAY_CONNECT:
        # only a borrower with nothing to wait for connects itself).
        with self._lock:
            grant = waiter.grant
            if grant is None and waiter in self._waiters:
                self._waiters.remove(waiter)
        if isinstance(grant, ConnectionRecord) and grant.holder is waiter.thread:
            self.checkin(grant, grant.lease, in_hand=True)

    def _make_ready(
        self, record: ConnectionRecord, thread: threading.Thread, now: float, timeout: float
    ) -> ConnectionRecord:
        """Check an idle connection before lending it; replace it if it is unfit."""
        reason = record.invalidated
        if reason is None and self.connector.is_closed(record.connection):
            reason = "closed"
        if reason is None and now >= record.recycle_deadline:
            reason = "recycle"
        if reason is None and self._ping_due(record, now):
            if self._ping(record):
                record.generation = self._generation
            else:
                reason = "pre_ping"
        if reason is None:
            return record
        # Replace it, keeping the reserved slot for the new connection. The checkout was
        # counted when the old one was lent, and will be again for the new one.
        with self._lock:
            self._end_lease(record)
            self._checkouts -= 1
            self._retire_counts(record)
            self.stats.record_invalidation(reason)
            if reason == "recycle":
                self.stats.counters["recycled"] += 1
            elif reason == "pre_ping":
                self.stats.counters["pre_ping_failures"] += 1
                # One dead connection often means a restarted server: check the others.
                self._generation += 1
        try:
            self._notify_invalidated(record, reason)
            self._close_quietly(record)
        except BaseException:
            self._give_back_slot()
            raise
        return self._open_for(thread, now, timeout)

    def _ping(self, record: ConnectionRecord) -> bool:
        try:
            return bool(self.connector.ping(record.connection))
        except Exception:
            return False

    def _open_for(
        self, thread: threading.Thread, started: float, timeout: float
    ) -> ConnectionRecord:
        """Open a new connection in a slot already reserved for the caller. When it fails
        while other connections are open, wait for one of them instead (until
        ``timeout`` from ``started``); with nothing open, raise the connect's error."""
        begun = time.monotonic()
        connection = record = None
        counted = False
        try:
            connection = self.connector.connect()
            seconds = time.monotonic() - begun
            record = ConnectionRecord(
                connection, generation=self._generation, recycle_at=self._recycle_deadline()
            )
            # Each step leaves what the except below undoes (an asynchronous exception:
            # KeyboardInterrupt, a gevent Timeout): the lend gives the lease last.
            with self._lock:
                self._connected(seconds)
                counted = True
                if not self._closed:
                    self._lend(record, thread, time.monotonic())
            if not record.lease:
                raise PoolClosedError(f"The connection pool {self.name!r} was closed.")
            logger.debug("Opened a new connection for %r (%d open).", self.name, self._total)
            return record
        except BaseException as error:
            if connection is not None:
                self._drop_new_connection(connection, record, counted=counted)
                raise
            waiter = self._queue_after_failed_connect(error, thread, started)
            if waiter is None:
                raise
        grant = self._wait(waiter, started, timeout)
        if grant is MAY_CONNECT:
            return self._open_for(thread, started, timeout)
        lease, now = grant.lease, time.monotonic()
        try:
            return self._make_ready(grant, thread, now, started + timeout - now)
        except BaseException:
            self.checkin(grant, lease, discard_reason="interrupted", in_hand=True)
            raise

    def _queue_after_failed_connect(
        self, error: BaseException, thread: threading.Thread, started: float
    ) -> Waiter | None:
        """A borrower's own connect failed: give its slot back, and queue the borrower
        when connections are open (one may come back); None: raise the error."""
        logger.debug("Opening a connection for %r failed: %s", self.name, error)
        with self._lock:
            self._total -= 1
            if self._connect_failed(error) and isinstance(error, Exception) and not self._closed:
                return self._queue(thread, started)
            openers = self._serve_queue()
        if openers:
            self._start_openers(openers)
        return None

    # -- internals of checkin --------------------------------------------------------

    def _discard(self, discarded: list[tuple[ConnectionRecord, str]]) -> None:
        """Outside the lock: close connections that left the pool (out of the idle stack,
        the parked and the borrowed already), then free their slots for whoever waits.
        Closed first, so the server never holds more sessions than the limit, even while
        a close is slow (a TLS shutdown, MySQL's COM_QUIT)."""
        if not discarded:
            return
        try:
            for record, reason in discarded:
                self._notify_invalidated(record, reason)
                self._close_quietly(record)
        finally:  # the slots are freed even when a receiver or a close is interrupted
            with self._lock:
                for record, reason in discarded:
                    self._forget(record, reason)
                openers = self._serve_queue()
            if openers:
                self._start_openers(openers)

    def _give_back_slot(self) -> None:
        """Outside the lock: a reserved slot is not used after all; the queue may."""
        with self._lock:
            self._total -= 1
            openers = self._serve_queue()
        if openers:
            self._start_openers(openers)

    def _forget(self, record: ConnectionRecord, reason: str) -> None:
        # Under the lock, once the connection is closed: it leaves the pool for good and
        # its slot is freed (``_discard`` serves the queue with it).
        self._total -= 1
        self._retire_counts(record)
        if reason == "overflow_idle":
            self.stats.counters["overflow_closed"] += 1
        else:
            self.stats.record_invalidation(reason)
        if reason == "recycle":
            self.stats.counters["recycled"] += 1

    def _notify_invalidated(self, record: ConnectionRecord, reason: str) -> None:
        # Outside the lock.
        logger.debug("Discarding a connection of %r (%s).", self.name, reason)
        if self.events is not None and reason != "overflow_idle":
            try:
                self.events.invalidated(self, record, reason)
            except Exception:
                logger.exception("A pool_invalidate receiver of %r failed.", self.name)

    def __repr__(self) -> str:
        return f"<ConnectionPool {self.name!r} {self._total}/{self.max_connections} open>"
