"""Introspection: the pool's state for statistics, monitoring and tests.

``get_stats()`` is one consistent snapshot taken under the lock, in the guide's
vocabulary (docs/stats.md lists every key); parked connections (parking.py) count as idle.
"""

from __future__ import annotations

import time
from typing import Any

from django_dataflow.pool.base import PoolState
from django_dataflow.pool.record import ConnectionRecord


class IntrospectionMixin(PoolState):
    """The read-only part of ConnectionPool."""

    @property
    def closed(self) -> bool:
        return self._closed

    def records(self) -> list[ConnectionRecord]:
        """Every connection of the pool now, idle and checked out."""
        with self._lock:
            return [*self._idle, *self._out]

    def checked_out_records(self) -> list[ConnectionRecord]:
        """Connections lent now (parked ones are idle, not lent)."""
        with self._lock:
            return [record for record in self._out if record.lease not in self._parked]

    def get_stats(self) -> dict[str, Any]:
        """A consistent snapshot of gauges and counters, in the guide's vocabulary."""
        now = time.monotonic()
        with self._lock:
            # Parked connections are idle for everybody but their holder; parked is a
            # subset of _out, and _out cannot change while we hold the lock.
            parked = len(self._parked)
            checked_out = len(self._out) - parked
            idle = len(self._idle) + parked
            records = (*self._idle, *self._out)
            parks = self._retired_parks + sum(record.parks for record in records)
            unparks = self._retired_unparks + sum(record.unparks for record in records)
            total = self._total
            waiting = len(self._waiters)
            maxwait = now - self._waiters[0].since if waiting else 0.0
            counters = dict(self.stats.counters)
            counters["checkouts"] = self._checkouts + unparks
            counters["checkins"] = self._checkins + parks
            counters["thread_reuses"] = unparks
            invalidated_by_reason = dict(self.stats.invalidated_by_reason)
            wait_time_avg = self.stats.wait_time_avg()
            wait_time_max = self.stats.wait_time_max
        overflow = max(0, total - self.pool_size)
        return {
            "pool_size": self.pool_size,
            "size": self.pool_size,
            "overflow_max": self.max_overflow,
            "max_connections": self.max_connections,
            "total": total,
            "checked_out": checked_out,
            "active_connections": checked_out,
            "idle_connections": idle,
            "overflow": overflow,
            "overflow_connections": overflow,
            "wait_queue": waiting,
            "maxwait": maxwait,
            "wait_time_avg": wait_time_avg,
            "wait_time_max": wait_time_max,
            "invalidated_by_reason": invalidated_by_reason,
            **counters,
        }
