"""Is a replica fit to take a read? Answered without a round trip per query.

A router picks an alias before the query runs and never sees the query's error, so a
read can only be saved from a dead replica *before* it is sent. For each candidate the
router asks ``health.usable(alias, dbset)``:

1. A replica that failed recently is skipped until its cool-down ends (no attempt at all).
2. The current thread's connection to it is opened now if it is not open — a pool
   checkout, which the query would make a moment later anyway. Refused: the replica is
   down for a cool-down, and the router tries the next.
3. An open connection is probed with ``poll()`` on its socket, a system call and no
   round trip: an idle connection has nothing to read unless the server closed it or
   said goodbye. Only then is it checked with a real query; a dead one is discarded, its
   pool told to ping its siblings, and a fresh one is tried.
4. With ``max_lag`` set, the replication lag is measured with one query — at most once
   per ``lag_check_interval`` per replica and process — and a replica further behind is
   skipped until a later measurement finds it caught up.

A query already running when its server dies still fails: no router can move it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.exceptions import SynchronousOnlyOperation
from django.db import DatabaseError, connections

from django_dataflow.backends.connector import socket_has_news
from django_dataflow.backends.server import wrapper_queries
from django_dataflow.errors import PoolTimeout
from django_dataflow.pool import registry
from django_dataflow.routing.config import DatabaseSet

logger = logging.getLogger("django_dataflow.routing")

# A dead connection found by the probe is replaced at most this many times per read.
CONNECT_ATTEMPTS = 3


class ReplicaState:
    __slots__ = ("down_until", "failures", "lag", "lag_due", "lagging", "last_error")

    def __init__(self) -> None:
        self.down_until = 0.0  # monotonic; skipped until then
        self.failures = 0  # consecutive failed attempts
        self.last_error = ""
        self.lag: float | None = None  # last measured, seconds
        self.lag_due = 0.0  # monotonic time of the next lag measurement
        self.lagging = False


def measure_lag(wrapper: Any) -> float | None:
    """Seconds the replica behind ``wrapper`` trails its primary; None if unknown
    (replication stopped). Runs on the DB-API connection, outside Django's query log."""
    return wrapper_queries(wrapper).replication_lag(wrapper.connection)


def _forbidden_in_this_test(error: AssertionError) -> bool:
    """Django's test cases refuse queries to aliases missing from their ``databases``
    with this error; the router then reads the primary instead of failing the test."""
    from django.test.testcases import DatabaseOperationForbidden

    return isinstance(error, DatabaseOperationForbidden)


class ReplicaHealth:
    """Process-wide memory of which replicas are down or lagging."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, ReplicaState] = {}

    def _state(self, alias: str) -> ReplicaState:
        state = self._states.get(alias)
        if state is None:
            with self._lock:
                state = self._states.setdefault(alias, ReplicaState())
        return state

    def reset(self) -> None:
        """Forget everything (settings changed, or between tests)."""
        with self._lock:
            self._states = {}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per replica: down (bool), seconds until retried, failures, last lag."""
        now = time.monotonic()
        return {
            alias: {
                "down": state.down_until > now,
                "retry_in": max(0.0, state.down_until - now),
                "failures": state.failures,
                "last_error": state.last_error,
                "lag": state.lag,
                "lagging": state.lagging,
            }
            for alias, state in list(self._states.items())
        }

    def mark_down(self, alias: str, cooldown: float, error: BaseException | str) -> None:
        state = self._state(alias)
        with self._lock:
            state.down_until = time.monotonic() + cooldown
            state.failures += 1
            state.last_error = str(error).strip() or type(error).__name__
        logger.warning(
            "Replica %r is unreachable (%s); reads skip it for %g s.",
            alias,
            state.last_error,
            cooldown,
        )

    def usable(self, alias: str, dbset: DatabaseSet) -> bool:
        """May a read go to replica ``alias`` now? Opens this thread's connection to it."""
        state = self._state(alias)
        now = time.monotonic()
        if state.down_until > now:
            return False
        wrapper = connections[alias]
        if wrapper.in_atomic_block:
            return True  # the caller's own transaction on it: leave it alone
        try:
            if not self._connected(alias, wrapper, dbset):
                return False
            if dbset.max_lag is not None and not self._lag_ok(alias, wrapper, dbset, state, now):
                return False
        except SynchronousOnlyOperation:
            return True  # called from async code: the query itself will run in a thread
        if state.failures:
            with self._lock:
                state.failures = 0
            logger.info("Replica %r is reachable again.", alias)
        return True

    def _connected(self, alias: str, wrapper: Any, dbset: DatabaseSet) -> bool:
        for _attempt in range(CONNECT_ATTEMPTS):
            if wrapper.connection is None:
                try:
                    wrapper.ensure_connection()
                except PoolTimeout:
                    # Reachable but busy (its pool is exhausted): skip it for this read
                    # only. Marked down, every read would go to the primary for the
                    # whole cool-down, after one burst of contention.
                    logger.debug("Replica %r's pool is exhausted; reading elsewhere.", alias)
                    return False
                except DatabaseError as error:  # refused, timed out
                    self.mark_down(alias, dbset.cooldown, error)
                    return False
                except AssertionError as error:
                    if _forbidden_in_this_test(error):
                        return False  # not down: this test only allows other aliases
                    raise
            if not socket_has_news(wrapper.connection) or wrapper.is_usable():
                return True
            self._discard(alias, wrapper)
        self.mark_down(alias, dbset.cooldown, "its connections keep dying")
        return False

    def _discard(self, alias: str, wrapper: Any) -> None:
        """Close the thread's dead connection; make its pool ping the idle ones."""
        record = getattr(wrapper, "dataflow_record", None)
        if record is not None:
            record.invalidate("disconnect")
        try:
            wrapper.close()
        except DatabaseError:
            wrapper.connection = None
        for pool in registry.all_pools(alias):
            pool.invalidate_older_connections()

    def _lag_ok(
        self, alias: str, wrapper: Any, dbset: DatabaseSet, state: ReplicaState, now: float
    ) -> bool:
        if now >= state.lag_due:
            with self._lock:
                due, state.lag_due = state.lag_due, now + dbset.lag_check_interval
            if now >= due:  # this thread won the measurement; the others use the last one
                try:
                    lag = measure_lag(wrapper)
                except wrapper.Database.Error as error:
                    self._discard(alias, wrapper)
                    self.mark_down(alias, dbset.cooldown, error)
                    return False
                assert dbset.max_lag is not None  # only sets with a max_lag are measured
                lagging = lag is None or lag > dbset.max_lag
                if lagging != state.lagging:
                    log = logger.warning if lagging else logger.info
                    log(
                        "Replica %r is %s (lag %s s, max_lag %g s).",
                        alias,
                        "lagging; reads skip it" if lagging else "caught up",
                        "unknown" if lag is None else f"{lag:.1f}",
                        dbset.max_lag,
                    )
                state.lag, state.lagging = lag, lagging
        return not state.lagging


health = ReplicaHealth()
