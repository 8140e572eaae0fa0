"""PoolState: the state every part of ConnectionPool shares, and the helpers they share.

Why it exists: ConnectionPool is put together from parts, one module each (pool.py the
borrowing path, parking.py, opening.py, housekeeping.py, introspection.py). Every part
subclasses this class, so each one is typed against the same attributes, and what more
than one part does (lend a connection, end a lease, claim a parked connection, close a
connection that is thrown away, tell whether a connection must answer a ping before it
is lent) is written once, here. (Whether one is due for recycling is a single
comparison with its ``recycle_deadline``, see record.py.)

Methods documented "under the lock" expect the caller to hold ``_lock``.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from django_dataflow.pool.connector import Connector
from django_dataflow.pool.leaks import LeakDetector
from django_dataflow.pool.record import ConnectionRecord
from django_dataflow.pool.stats import PoolStats
from django_dataflow.pool.waiting import Waiter

logger = logging.getLogger("django_dataflow.pool")

# Recycle deadlines are spread over the last 2.5 % of the lifetime (as HikariCP does) so
# connections opened together do not all expire together.
RECYCLE_JITTER = 0.025

# After a failed connect while connections are open, the next connect for the queue waits
# CONNECT_BACKOFF seconds, doubling per failure up to CONNECT_BACKOFF_MAX, each delay
# jittered down by up to half (see opening.py).
CONNECT_BACKOFF = 0.05
CONNECT_BACKOFF_MAX = 2.0


class PoolEvents(Protocol):
    """Optional listener for what happens inside the pool; called outside the lock."""

    def invalidated(self, pool: PoolState, record: ConnectionRecord, reason: str) -> None: ...

    def timed_out(self, pool: PoolState, waited: float, message: str) -> None: ...

    def leaked(self, pool: PoolState, record: ConnectionRecord) -> None: ...


class PoolState:
    """The options, the bookkeeping and the shared helpers of a ConnectionPool."""

    def __init__(
        self,
        connector: Connector,
        *,
        name: str = "default",
        pool_size: int = 5,
        max_overflow: int = 10,
        timeout: float = 30.0,
        recycle: float | None = None,
        pre_ping: bool = True,
        pre_ping_bypass: float = 0.5,
        overflow_idle_timeout: float = 30.0,
        leak_threshold: float | None = None,
        leak_action: str = "log",
        leak_check_interval: float = 1.0,
        events: PoolEvents | None = None,
        target: str = "",
        thread_affinity: bool = True,
        max_opening: int = 2,
        vendor: str = "",
        overflow_delay: float = 0.0,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if max_overflow < 0:
            raise ValueError("max_overflow must not be negative")
        if max_opening < 1:
            raise ValueError("max_opening must be at least 1")
        if not 0 <= overflow_delay < threading.TIMEOUT_MAX:
            raise ValueError("overflow_delay must be a number of seconds >= 0")
        self.name = name
        # What the connections lead to (a database name), for messages and for closing
        # every pool on a database before it is dropped.
        self.target = target
        # The kind of database, named by whoever makes the pool: for log records only.
        self.vendor = vendor
        self.connector = connector
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.max_connections = pool_size + max_overflow
        self.timeout = timeout
        self.recycle = recycle or None
        self.pre_ping = pre_ping
        self.pre_ping_bypass = pre_ping_bypass
        self.overflow_idle_timeout = overflow_idle_timeout
        self.max_opening = max_opening
        # A waiter must have waited this long before the pool opens a connection beyond
        # pool_size for it (opening.py): with connections held for one transaction at a
        # time, one comes back within milliseconds, and a burst need not open overflow.
        self.overflow_delay = overflow_delay
        self.leaks = LeakDetector(leak_threshold, leak_action, leak_check_interval)
        self.events = events
        # Parking is off with leak detection: a parked connection is not "held".
        self.thread_affinity = thread_affinity and not self.leaks.threshold

        self._lock = threading.Lock()
        self._idle: deque[ConnectionRecord] = deque()
        self._out: set[ConnectionRecord] = set()
        self._waiters: deque[Waiter] = deque()
        # Parked connections (still in _out), by the lease of the checkout that parked
        # them, in the order they were parked (see parking.py).
        self._parked: dict[int, ConnectionRecord] = {}
        # Physical connections open or being opened: the number held against the limit.
        self._total = 0
        # Connects running in opener threads for the waiters (counted in _total too).
        self._opening = 0
        # Connects that failed in a row, the last one's error, and when the openers may
        # try again (time.monotonic(); 0: now). Cleared by a connect that succeeds.
        self._connect_failures = 0
        self._connect_error: BaseException | None = None
        self._retry_at = 0.0
        # An opener thread is sleeping until _retry_at, to serve the queue then (or about
        # to: _retry_due says the next opener thread to start is the one, see opening.py).
        self._retrying = False
        self._retry_due = False
        self._generation = 0
        self._leases = itertools.count(1)
        self._closed = False
        # Checkouts whose borrower vanished (garbage-collected without closing); they are
        # returned by the next housekeeping pass, never from inside a finalizer.
        self._orphans: deque[tuple[ConnectionRecord, int]] = deque()
        self.pid = os.getpid()
        self.stats = PoolStats()
        # The two counters bumped on every request: plain attributes, the cheapest.
        self._checkouts = 0
        self._checkins = 0
        # Parks count as checkins and unparks as checkouts; records keep their own counts
        # (only their holder writes them), handed over here when they leave the pool.
        self._retired_parks = 0
        self._retired_unparks = 0

    if TYPE_CHECKING:
        # Provided by pool.py, where the borrowing path lives; declared here so that the
        # parts that return connections (parking, housekeeping) type-check on their own.

        def checkin(
            self,
            record: ConnectionRecord,
            lease: int,
            *,
            discard_reason: str | None = None,
            in_hand: bool = False,
        ) -> None: ...

        def _discard(self, discarded: list[tuple[ConnectionRecord, str]]) -> None: ...

        def _give_back_slot(self) -> None: ...

        # Provided by opening.py.

        def _serve_queue(self) -> int: ...

        def _start_openers(self, count: int, *, give_back: bool = True) -> int: ...

    # -- lending -------------------------------------------------------------------------

    def _lend(self, record: ConnectionRecord, thread: threading.Thread, now: float) -> None:
        # Under the lock. The lease last: a lend that an asynchronous exception interrupts
        # leaves a record without a lease (at most in _out), which is not lent.
        lease = next(self._leases)
        self._out.add(record)
        record.holder = thread
        record.last_checkout_at = now
        self._checkouts += 1
        record.lease = lease

    def _lend_or_put_back(
        self, record: ConnectionRecord, thread: threading.Thread, now: float
    ) -> None:
        # Under the lock: lend a connection taken from the idle stack or from parking. A
        # lend that an asynchronous exception interrupts (half-way or just after) puts
        # it back on the idle stack, lent to nobody, instead of losing it. (A parked one
        # is clean: parking checked it.)
        try:
            self._lend(record, thread, now)
        except BaseException:
            self._end_lease(record)
            record.idle_since = time.monotonic()
            self._idle.append(record)
            raise

    def _lend_to_oldest_waiter(self, record: ConnectionRecord, now: float) -> None:
        # Under the lock, with at least one waiter: the connection becomes its grant.
        waiter = self._waiters.popleft()
        self._lend(record, waiter.thread, now)
        waiter.grant = record
        waiter.wake()

    def _end_lease(self, record: ConnectionRecord) -> None:
        # Under the lock: the connection is lent to nobody any more, and any later
        # checkin under the old lease is stale.
        self._out.discard(record)
        record.lease = 0
        record.holder = None

    def _retire_counts(self, record: ConnectionRecord) -> None:
        # Under the lock: a record leaving the pool hands its counters to the pool.
        self._retired_parks += record.parks
        self._retired_unparks += record.unparks

    def _ping_due(self, record: ConnectionRecord, now: float) -> bool:
        """True when an idle or parked connection must answer a ping before it is lent:
        it is older than the last disconnect, or pre-ping is on and it idled past the
        bypass window (or, inside the window, the server spoke up: how a killed
        session shows itself)."""
        return record.generation != self._generation or (
            self.pre_ping
            and (
                now - record.idle_since > self.pre_ping_bypass
                or self.connector.has_pending_input(record.connection)
            )
        )

    # -- parked connections, claimed under the lock (see parking.py for the claim) -------

    def _take_parked(self, newest: bool = False) -> ConnectionRecord | None:
        """Under the lock: claim the longest-parked connection (``newest``: the most
        recently parked), or None. A borrower takes the newest, as from the idle stack:
        surplus connections stay parked long enough for the housekeeper to close them
        as idle overflow."""
        parked = self._parked
        while parked:
            try:
                lease = next(reversed(parked)) if newest else next(iter(parked))
            except (StopIteration, RuntimeError):  # a holder popped it meanwhile
                continue
            record = parked.pop(lease, None)
            if record is not None:
                # The holder's park was its checkin; lending it again is a checkout.
                return record
        return None

    def _hand_parked_to_waiters(self) -> None:
        """Under the lock: parked connections go to the oldest waiters."""
        while self._waiters and self._parked:
            record = self._take_parked()
            if record is None:
                return
            self._lend_to_oldest_waiter(record, time.monotonic())

    def _take_all_parked(self) -> list[ConnectionRecord]:
        """Under the lock: claim every parked connection and take it out of the pool's
        count (the caller closes them)."""
        taken = []
        while (record := self._take_parked()) is not None:
            self._end_lease(record)
            self._total -= 1
            self._retire_counts(record)
            taken.append(record)
        return taken

    # -- opening and closing -------------------------------------------------------------

    def _connect_failed(self, error: BaseException) -> bool:
        """Under the lock, the failed connect's slot given back: remember the error and,
        when connections are open (one may come back), put the next connect for the
        queue off (jittered exponential backoff). Returns whether connections are open."""
        self.stats.counters["connection_errors"] += 1
        self._connect_error = error
        if self._total == self._opening:
            return False  # nothing open: the callers fail fast, no backoff
        self._connect_failures += 1
        delay = min(CONNECT_BACKOFF_MAX, CONNECT_BACKOFF * 2 ** min(self._connect_failures - 1, 16))
        self._retry_at = time.monotonic() + delay * (1.0 - random.random() / 2)
        return True

    def _connected(self, seconds: float) -> None:
        """Under the lock: a connect succeeded after ``seconds``. Every physical connect,
        a borrower's own or an opener's, is counted and goes to the connect-time
        histogram, and it ends the failed connects' backoff. Counted last: interrupted
        before, the connection is not counted yet (see ``_drop_new_connection``)."""
        self.stats.connect_time.observe(seconds)
        self._connect_failures = 0
        self._connect_error = None
        self._retry_at = 0.0
        self.stats.counters["connections_created"] += 1

    def _recycle_deadline(self) -> float | None:
        if not self.recycle:
            return None
        lifetime = self.recycle * (1.0 - random.random() * RECYCLE_JITTER)
        return time.monotonic() + lifetime

    def _drop_new_connection(
        self, connection: Any, record: ConnectionRecord | None, *, counted: bool
    ) -> None:
        """Outside the lock: a borrower's connect succeeded, and what followed was
        interrupted (an asynchronous exception) or found the pool closed. A connection
        lent already is given back like any other; otherwise it is closed and its slot
        freed for the queue. ``counted``: ``_connected`` counted it."""
        if record is not None:
            with self._lock:
                lease = record.lease
                if not lease:
                    self._out.discard(record)  # (a lend interrupted half-way)
            if lease:
                self.checkin(record, lease, in_hand=True)
                return
        try:
            self.connector.close(connection)
        except Exception:  # it is being thrown away; nothing useful to do
            logger.debug("Error closing a connection of %r.", self.name, exc_info=True)
        finally:
            with self._lock:
                if not counted:
                    self.stats.counters["connections_created"] += 1
                self.stats.counters["connections_closed"] += 1
            self._give_back_slot()

    def _close_quietly(self, record: ConnectionRecord) -> None:
        # Outside the lock.
        try:
            self.connector.close(record.connection)
        except Exception:  # it is being thrown away; nothing useful to do
            logger.debug("Error closing a connection of %r.", self.name, exc_info=True)
        with self._lock:
            self.stats.counters["connections_closed"] += 1
