"""Opening connections for waiting borrowers in the background, a few at a time.

Why it exists: when every connection is busy, a borrower that opens a connection for
itself waits for that connect even if another borrower gives a connection back a
millisecond later. And a burst of borrowers on an empty pool (a deploy, a restart, the
first second of a benchmark) opens one connection each, all at once: on a small machine
the server then sets up fifty sessions in parallel and every one of those connects takes
as long as all of them together.

So, as HikariCP and psycopg_pool do, a borrower that finds nothing to take joins the
queue of waiters and the pool opens connections for the queue in background threads, a
few at a time, with a slow start: ``max_opening`` (2) at once while the pool is small,
then up to a quarter of the connections already open. The first connections come quickly
(two connects share the machine, not fifty), and a pool that needs fifty connections
still gets them within a few connect times. (Measured on a cold 50-thread burst: two at
a time throughout gave the best tail for the burst but left the pool short of
connections long after it: 1.6x fewer requests served than with the slow start.)

A waiter gets whatever comes first: a connection given back (checkin hands it to the
oldest waiter) or a new one (the opener hands it to the oldest waiter, or keeps it idle
when nobody waits any more). A failed connect fails the oldest waiter with the connect's
error at once (the server is down: the request should fail fast, not wait for
``pool_timeout``) and the next attempt starts for the others.

An opener thread opens connection after connection while the queue needs them, and
starts more threads only when the slow start allows more connects at once.

The limit is still counted before connecting: an opener holds one of ``_total``'s slots
from the moment it is started. A slot freed while requests wait (a connection discarded,
a connect that failed) goes to the queue the same way, through ``_serve_queue``. Only a
borrower with nothing at all to wait for (no connection open or opening) connects in its
own thread.
"""

from __future__ import annotations

import logging
import threading
import time

from django_dataflow.pool.base import PoolState
from django_dataflow.pool.record import ConnectionRecord
from django_dataflow.pool.waiting import ConnectFailed

logger = logging.getLogger("django_dataflow.pool")

# Slow start: once the pool has connections, up to 1/SLOW_START_SHARE of them may be
# being opened at once (never fewer than max_opening).
SLOW_START_SHARE = 4


class OpeningMixin(PoolState):
    """The background-opening part of ConnectionPool."""

    def _serve_queue(self) -> int:
        """Under the lock: what the waiting queue needs now. Reserve slots for openers (no
        more openers than waiters, at most ``max_opening`` or a quarter of the open
        connections at once, within the limit) and return how many to start; at the
        limit, give the waiters parked connections, since no new connection is coming
        for them."""
        started = 0
        at_once = max(self.max_opening, (self._total - self._opening) // SLOW_START_SHARE)
        while (
            self._opening < at_once
            and self._total < self.max_connections
            and len(self._waiters) > self._opening
        ):
            self._opening += 1
            self._total += 1
            started += 1
        if self._parked and self._total >= self.max_connections:
            self._hand_parked_to_waiters(beyond=self._opening)
        return started

    def _fail_waiters(self, failure: ConnectFailed) -> None:
        """Under the lock: a connect failed. The oldest waiter gets its error at once.
        With nothing open (nothing can come back), so does every waiting request: the
        next attempt would most likely fail the same way, and against a server that
        does not answer (a partition) each attempt takes ``connect_timeout``, so they
        would fail one after another, the last after ``pool_timeout``."""
        everyone = self._total == self._opening
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.grant = failure
            waiter.event.set()
            if not everyone:
                return

    def _start_openers(self, count: int) -> None:
        # Outside the lock: one thread per reserved slot.
        for _ in range(count):
            threading.Thread(
                target=self._open_for_waiters, name=f"dataflow-open-{self.name}", daemon=True
            ).start()

    def _open_for_waiters(self) -> None:
        """An opener thread: open a connection (its slot is reserved), give it to the
        oldest waiter, and go on while the queue needs more.

        The thread keeps one of the next reserved slots for itself and starts threads
        only for the others: under load, starting a thread costs its starter a wait for
        the interpreter lock among every busy thread, once per connection otherwise.
        """
        more = 1
        while more:
            more = self._open_one_for_waiters()
            if more > 1:
                self._start_openers(more - 1)

    def _open_one_for_waiters(self) -> int:
        """Open one connection for the queue; return how many slots the queue needs now
        (reserved, to be opened by this thread and new ones)."""
        try:
            connection = self.connector.connect()
        except BaseException as error:
            with self._lock:
                self._opening -= 1
                self._total -= 1
                self.stats.counters["connection_errors"] += 1
                if self._waiters:
                    # A connection parked by a live thread is lent only at the limit
                    # (see checkout), but one is better than the connect's error: the
                    # server or the role may be out of sessions. (If the server is down,
                    # the parked one fails its pre-ping and the waiter fails as fast.)
                    parked = self._take_parked() if self._parked else None
                    if parked is not None:
                        self._lend_to_oldest_waiter(parked, time.monotonic())
                    else:
                        self._fail_waiters(ConnectFailed(error))
                more = self._serve_queue()
            logger.debug("Opening a connection for %r failed: %s", self.name, error)
            return more
        record = ConnectionRecord(
            connection, generation=self._generation, recycle_at=self._recycle_deadline()
        )
        with self._lock:
            self._opening -= 1
            self.stats.counters["connections_created"] += 1
            closed = self._closed
            if closed:
                self._total -= 1
            elif self._waiters:
                self._lend_to_oldest_waiter(record, time.monotonic())
            else:
                self._idle.append(record)  # everybody was served (or gave up) meanwhile
            more = 0 if closed else self._serve_queue()
        if closed:
            self._close_quietly(record)
            return 0
        logger.debug("Opened a new connection for %r (%d open).", self.name, self._total)
        return more
