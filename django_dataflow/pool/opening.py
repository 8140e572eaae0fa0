"""Opening connections for waiting borrowers in the background, a few at a time.

Why it exists: when every connection is busy, a borrower that opens a connection for
itself waits for that connect even if another borrower gives a connection back a
millisecond later. And a burst of borrowers on an empty pool (a deploy, a restart, the
first second of a benchmark) opens one connection each, all at once: on a small machine
the server then sets up fifty sessions in parallel and every one of those connects takes
as long as all of them together.

So, as HikariCP and psycopg_pool do, a borrower that finds nothing to take joins the
queue of waiters and the pool opens connections for the queue in background threads, a
few at a time, with a slow start: ``max_opening`` (2) at once while the pool is below
``pool_size``, then up to a quarter of the connections already open (overflow for a
small pool: one at a time, since the connections it has are serving the queue). The
first connections come quickly (two connects share the machine, not fifty), and a pool
that needs fifty connections still gets them within a few connect times. (Measured on
a cold 50-thread burst: two at a time throughout gave the best tail for the burst but
left the pool short of connections long after it: 1.6x fewer requests served than with
the slow start.)

A waiter gets whatever comes first: a connection given back (checkin hands it to the
oldest waiter) or a new one (the opener hands it to the oldest waiter, or keeps it idle
when nobody waits any more). A failed connect, as in psycopg_pool and HikariCP:

* with connections open (one will come back), fails nobody: the server or the role may
  be out of sessions. Waiters wait for a returned connection until ``pool_timeout``
  (their PoolTimeoutError carries the last connect's error), and the next connect for
  the queue waits a jittered exponential backoff (``CONNECT_BACKOFF`` doubling up to
  ``CONNECT_BACKOFF_MAX``, base.py), slept by one opener thread: the opener whose
  connect failed, or, when the failed connect was a borrower's own, one started for the
  queue that forms during the backoff;
* with nothing open (a restart, a dead replica), fails every waiter at once with its
  error: nothing can come back, and requests must fail fast (the router moves reads to
  the primary).

A thread that cannot be started (``RuntimeError: can't start new thread``: a pids
limit, memory pressure) gives its slot back; see ``_start_openers``.

An opener thread opens connection after connection while the queue needs them, and
starts more threads only when the slow start allows more connects at once.

The limit is still counted before connecting: an opener holds one of ``_total``'s slots
from the moment it is started. A slot freed while requests wait (a connection discarded,
a connect that failed) goes to the queue the same way, through ``_serve_queue``. Only a
borrower with nothing at all to wait for (no connection open or opening), or whose
opener thread could not be started, connects in its own thread.
"""

from __future__ import annotations

import logging
import threading
import time

from django_dataflow.pool.base import PoolState
from django_dataflow.pool.record import ConnectionRecord
from django_dataflow.pool.reporting import log_extra
from django_dataflow.pool.waiting import ConnectFailed, Waiter

logger = logging.getLogger("django_dataflow.pool")

# Slow start: once the pool has connections, up to 1/SLOW_START_SHARE of them may be
# being opened at once (never fewer than max_opening).
SLOW_START_SHARE = 4


class OpeningMixin(PoolState):
    """The background-opening part of ConnectionPool."""

    def _serve_queue(self) -> int:
        """Under the lock: what the waiting queue needs now. Idle parked connections go to
        the oldest waiters first (an idle connection beats a new one); then reserve slots
        for openers (no more openers than waiters left, at most ``max_opening`` or a
        quarter of the open connections at once, within the limit; while a failed
        connect's backoff runs, at most the one that sleeps it out) and return how many
        to start."""
        if self._parked:
            self._hand_parked_to_waiters()
        started = 0
        if self._retry_at and (self._retrying or time.monotonic() < self._retry_at):
            return self._serve_queue_backing_off()
        # Below pool_size (a cold start, a refill after a restart) at least max_opening
        # at once. Beyond it the queue is a burst that the pool_size connections are
        # already serving as they come back: overflow comes one connect at a time while
        # the pool is small, as HikariCP and psycopg_pool always add connections.
        floor = self.max_opening if self._total < self.pool_size else 1
        at_once = max(floor, (self._total - self._opening) // SLOW_START_SHARE)
        now = time.monotonic() if self.overflow_delay else 0.0
        while (
            self._opening < at_once
            and self._total < self.max_connections
            and len(self._waiters) > self._opening
            and (self._total < self.pool_size or self._waited_for_overflow(now))
        ):
            self._opening += 1
            self._total += 1
            started += 1
        return started

    def _waited_for_overflow(self, now: float) -> bool:
        """Under the lock: may the next opener open a connection beyond ``pool_size``?
        With an ``overflow_delay``, only for a waiter that has waited that long (the
        oldest: it is the one an opener serves first), and only while no other connect
        runs: a waiter may be waiting for that connect (the pool's first connections,
        opened for a burst), not for a connection held too long."""
        if not self.overflow_delay:
            return True
        return not self._opening and self._waiters[0].since <= now - self.overflow_delay

    def _wait_for_overflow(self, waiter: Waiter, remaining: float) -> float:
        """Outside the lock, queued, with an ``overflow_delay``: wait until the waiter
        has waited that long, then, if nothing was handed over, let the openers open
        beyond ``pool_size`` for the queue. Returns what is left of ``remaining``."""
        begun = time.monotonic()
        first = waiter.since + self.overflow_delay - begun
        if first <= 0 or first >= remaining or waiter.sleep(first):
            return max(0.0, remaining - (time.monotonic() - begun))
        openers = 0
        try:
            with self._lock:
                if waiter.grant is None:
                    openers = self._serve_queue()
            if openers:
                reserved, openers = openers, 0
                self._start_openers(reserved)  # (gives back what it cannot start)
        except BaseException:
            if openers:  # interrupted between the reservation and the threads
                with self._lock:
                    self._opening -= openers
                    self._total -= openers
            raise
        return max(0.0, remaining - (time.monotonic() - begun))

    def _serve_queue_backing_off(self) -> int:
        """Under the lock, a failed connect's backoff running: nothing connects for the
        queue until it ends, and one opener thread sleeps it out and serves the queue
        then. When nobody does (the failed connect was a borrower's own, or the queue
        formed after the retrying opener found it empty), reserve one opener slot for
        that thread (``_retry_due``: the next opener thread to start sleeps first) and
        return 1. None while a connect for the queue runs: it serves the queue when it
        ends, or becomes the retrying opener."""
        if (
            self._retrying
            or self._opening
            or self._closed
            or not self._waiters
            or self._total >= self.max_connections
        ):
            return 0
        self._retrying = self._retry_due = True
        self._opening += 1
        self._total += 1
        return 1

    def _fail_waiters(self, failure: ConnectFailed) -> None:
        """Under the lock, with nothing open: a connect failed, and every waiting request
        gets its error at once. Nothing can come back, the next attempt would most likely
        fail the same way, and against a server that does not answer (a partition) each
        attempt takes ``connect_timeout``, so they would fail one after another, the last
        after ``pool_timeout``."""
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.grant = failure
            waiter.wake()

    def _start_openers(self, count: int, *, give_back: bool = True) -> int:
        """Outside the lock: one opener thread per reserved slot. Returns how many could
        not be started; their slots are given back (``give_back``; the queue is not
        served with them: the caller decides, see checkout) or left to the caller."""
        for done in range(count):
            ticket = _Ticket()
            try:
                threading.Thread(
                    target=self._open_for_waiters,
                    args=(ticket,),
                    name=f"dataflow-open-{self.name}",
                    daemon=True,
                ).start()
            except BaseException as error:
                left = count - done
                with self._lock:
                    if ticket.running:  # started after all (start() was interrupted)
                        left -= 1
                    ticket.cancelled = True
                    if self._retry_due:  # no thread sleeps out the backoff after all
                        self._retry_due = self._retrying = False
                    if give_back:
                        self._opening -= left
                        self._total -= left
                if not isinstance(error, Exception):
                    raise  # interrupted (the slots are given back or the caller's)
                logger.warning(
                    "Could not start a thread to open connections for %r.",
                    self.name,
                    exc_info=True,
                    extra=log_extra(self),
                )
                return left
        return 0

    def _open_for_waiters(self, ticket: _Ticket | None = None) -> None:
        """An opener thread: open a connection (its slot is reserved), give it to the
        oldest waiter, and go on while the queue needs more.

        The thread keeps one of the next reserved slots for itself and starts threads
        only for the others: under load, starting a thread costs its starter a wait for
        the interpreter lock among every busy thread, once per connection otherwise.
        Slots it cannot start a thread for, it opens itself, one after another.

        The thread reserved to sleep out a backoff (``_retry_due``) gives its slot back
        and sleeps first, as an opener whose connect failed does.
        """
        retry = False
        if ticket is not None:
            with self._lock:
                if ticket.cancelled:
                    return  # its starter gave the slot back
                ticket.running = True
                if self._retry_due:
                    self._retry_due = False
                    self._opening -= 1
                    self._total -= 1
                    retry = True
        pending = self._retry_after_backoff() if retry else 1
        while pending:
            pending += self._open_one_for_waiters() - 1
            if pending > 1:
                pending = 1 + self._start_openers(pending - 1, give_back=False)

    def _open_one_for_waiters(self) -> int:
        """Open one connection for the queue; return how many slots the queue needs now
        (reserved, to be opened by this thread and new ones)."""
        begun = time.monotonic()
        try:
            connection = self.connector.connect()
        except BaseException as error:
            retry = False
            with self._lock:
                self._opening -= 1
                self._total -= 1
                anything_open = self._connect_failed(error)
                if not anything_open:
                    self._fail_waiters(ConnectFailed(error))
                elif self._waiters and not self._retrying and not self._closed:
                    self._retrying = retry = True
                more = self._serve_queue()
            logger.debug("Opening a connection for %r failed: %s", self.name, error)
            if retry:
                return more + self._retry_after_backoff()
            return more
        seconds = time.monotonic() - begun
        record = ConnectionRecord(
            connection, generation=self._generation, recycle_at=self._recycle_deadline()
        )
        with self._lock:
            self._opening -= 1
            self._connected(seconds)
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

    def _retry_after_backoff(self) -> int:
        """Sleep until the backoff of the failed connects ends (it may grow meanwhile),
        then reserve what the queue needs; 0 when nobody waits any more."""
        while True:
            with self._lock:
                wait = self._retry_at - time.monotonic()
                if wait <= 0 or self._closed or not self._waiters:
                    self._retrying = False
                    return 0 if self._closed else self._serve_queue()
            try:
                time.sleep(wait)
            except BaseException:  # interrupted (a gevent Timeout): somebody else retries
                with self._lock:
                    self._retrying = False
                raise


class _Ticket:
    """An opener thread's claim on its slot, settled under the pool lock: the thread
    runs only if its starter did not give the slot back (``start()`` failed)."""

    __slots__ = ("cancelled", "running")

    def __init__(self) -> None:
        self.cancelled = False
        self.running = False
