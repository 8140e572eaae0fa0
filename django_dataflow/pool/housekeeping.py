"""Housekeeping: dead borrowers, orphans, idle expiry, closing, forking.

What the pool does besides lending and taking back: the housekeeper thread calls
``maintain()`` about once a second (expired and overflow idle connections, connections of
threads that ended, leak checks); ``close()`` and ``forget_after_fork()`` end a pool.
Kept apart from pool.py so that the borrowing path reads on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django_dataflow.pool.base import PoolState
from django_dataflow.pool.record import ConnectionRecord
from django_dataflow.pool.reporting import log_extra
from django_dataflow.pool.waiting import POOL_CLOSED

logger = logging.getLogger("django_dataflow.pool")


class HousekeepingMixin(PoolState):
    """The housekeeping part of ConnectionPool."""

    # -- dead borrowers ------------------------------------------------------------------

    def _claim_abandoned(self, claimer: threading.Thread) -> list[tuple[ConnectionRecord, int]]:
        """Under the lock: find connections held by threads that have ended.

        The claimer becomes their holder so no other thread reclaims them too.
        """
        abandoned = [
            (record, record.lease)
            for record in self._out
            if record.holder is not None
            and not record.holder.is_alive()
            and record.lease not in self._parked  # parked: returned already (see maintain)
            and record.reclaimed != record.lease  # an orphan being returned already
        ]
        for record, lease in abandoned:
            record.holder = claimer
            record.reclaimed = lease
        return abandoned

    def _return_abandoned(self, abandoned: list[tuple[ConnectionRecord, int]]) -> None:
        for record, lease in abandoned:
            logger.warning(
                "A thread ended without returning its connection to the pool of %r; "
                "the connection was reclaimed. Close connections when a thread is done "
                "(django.db.connection.close()).",
                self.name,
                extra=log_extra(self),
            )
            with self._lock:
                self.stats.counters["reclaimed_from_dead_threads"] += 1
            self.checkin(record, lease, in_hand=True)

    def return_later(self, record: ConnectionRecord, lease: int) -> None:
        """Queue a checkout for return by the housekeeper.

        Safe to call from a garbage-collection finalizer: it takes no lock (appending to
        a deque is atomic), so it cannot deadlock with a thread inside the pool.
        """
        self._orphans.append((record, lease))

    def _return_orphans(self) -> None:
        while True:
            try:
                record, lease = self._orphans.popleft()
            except IndexError:
                return
            with self._lock:
                # Claimed under the lock, as _claim_abandoned claims: otherwise a
                # borrower could reclaim the same checkout, get the connection and
                # start a transaction while this return's reset (a ROLLBACK) runs.
                if record.lease != lease or record.reclaimed == lease:
                    continue
                record.reclaimed = lease
            self.checkin(record, lease)

    # -- housekeeping ----------------------------------------------------------------

    def maintain(self) -> None:
        """Periodic work: close expired idle connections and overflow connections that
        idled too long, and reclaim connections of threads that ended."""
        self._return_orphans()
        now = time.monotonic()
        expired: list[tuple[ConnectionRecord, str]] = []
        with self._lock:
            closed = self._closed
            if closed:
                # Connections of threads that ended after close() are closed too.
                abandoned = self._claim_abandoned(threading.current_thread())
        if closed:
            if abandoned:
                self._return_abandoned(abandoned)
            return
        with self._lock:
            for record in list(self._idle):
                if record.invalidated or now >= record.recycle_deadline:
                    self._idle.remove(record)
                    expired.append((record, record.invalidated or "recycle"))
            while (
                self._idle
                and self._total - len(expired) > self.pool_size
                and now - self._idle[0].idle_since >= self.overflow_idle_timeout
            ):
                expired.append((self._idle.popleft(), "overflow_idle"))
            if self._parked:
                self._expire_parked(now, expired)
            abandoned = self._claim_abandoned(threading.current_thread())
            leaked = self.leaks.find(self._out, now) if self.leaks.threshold else []
            self.stats.counters["leaks"] += len(leaked)
            # Waiters no opener serves (an opener thread could not be started): serve
            # them now.
            openers = self._serve_queue() if self._waiters else 0
        if openers:
            self._start_openers(openers)
        self._discard(expired)  # closed, then their slots freed
        if abandoned:
            self._return_abandoned(abandoned)
        for record in leaked:
            self.leaks.report(self, record, now)

    def _expire_parked(self, now: float, expired: list[tuple[ConnectionRecord, str]]) -> None:
        """Under the lock (housekeeping): close parked connections that expired or idled
        too long as overflow; make those of ended threads plain idle ones."""
        for lease, record in tuple(self._parked.items()):
            if record.invalidated is not None:
                reason = record.invalidated
            elif now >= record.recycle_deadline:
                reason = "recycle"
            elif (
                self._total - len(expired) > self.pool_size
                and now - record.idle_since >= self.overflow_idle_timeout
            ):
                reason = "overflow_idle"
            elif record.holder is not None and not record.holder.is_alive():
                reason = ""
            else:
                continue
            if self._parked.pop(lease, None) is not record:
                continue  # its holder took it back meanwhile
            self._end_lease(record)
            if reason:
                expired.append((record, reason))
            elif self._waiters:
                self._lend_to_oldest_waiter(record, now)
            else:
                self._idle.appendleft(record)  # idle since it was parked: at the old end

    def close(self) -> None:
        """Close idle connections, and those of threads that ended, now, and the others
        as they come back; refuse new checkouts."""
        with self._lock:
            self._closed = True
            # Nobody will give these back: a thread ended holding them.
            abandoned = self._claim_abandoned(threading.current_thread())
            idle = list(self._idle)
            self._idle.clear()
            self._total -= len(idle)
            for record in idle:
                self._retire_counts(record)
            idle += self._take_all_parked()
            while self._waiters:
                waiter = self._waiters.popleft()
                waiter.grant = POOL_CLOSED
                waiter.wake()
        for record in idle:
            self._close_quietly(record)
        if abandoned:
            self._return_abandoned(abandoned)  # (a closed pool closes what comes back)

    def close_at_exit(self) -> None:
        """``close()``, and also close the connections the exiting thread still holds
        (a script's or a command's connection, never given back). Connections of
        threads still running (daemon threads) are left alone: closing one under a
        query could crash the driver."""
        exiting = threading.current_thread()
        with self._lock:
            stranded = [
                (record, record.lease)
                for record in self._out
                if record.holder is exiting
                and record.lease not in self._parked
                and record.reclaimed != record.lease
            ]
            for record, lease in stranded:
                record.reclaimed = lease  # claimed, as _claim_abandoned claims
        self.close()
        for record, lease in stranded:
            self.checkin(record, lease, in_hand=True)

    def forget_after_fork(self) -> list[Any]:
        """In a forked child: drop every connection without closing it (they belong to
        the parent) and return them, so the caller can keep them from being finalized."""
        # The lock may have been held by a thread that does not exist in the child.
        self._lock = threading.Lock()
        records = [*self._idle, *self._out]
        inherited = [record.connection for record in records]
        for record in records:
            record.lease = 0  # any later checkin of these is stale and ignored
        for connection in inherited:
            try:
                self.connector.forget_after_fork(connection)
            except Exception:
                logger.debug("Could not detach an inherited connection.", exc_info=True)
        self._idle.clear()
        self._out.clear()
        self._parked.clear()
        self._waiters.clear()
        self._total = 0
        self._opening = 0
        self._retrying = self._retry_due = False
        self._closed = True
        return inherited
