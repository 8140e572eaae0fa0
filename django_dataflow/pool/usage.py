"""Use time and connect time: what the pool's histograms measure besides waits.

A borrower's *use* of a connection runs from its checkout (or the take-back of its own
parked connection) to its checkin or its park. A parked stretch is not use: a parked
connection is idle for everybody but its holder, any borrower takes it when no idle
one is left, and the gauges count it as idle; counted as use, a thread's parked
connection would look held for the thread's whole life, and the histogram would say
nothing about requests. So a park ends a use, and a park later turned into a checkin
(the holder's wrapper closes, or it expired while parked) does not count it again.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from django_dataflow.pool.introspection import IntrospectionMixin
from django_dataflow.pool.parking import ParkingMixin
from django_dataflow.pool.record import ConnectionRecord
from django_dataflow.pool.stats import USE_BUCKETS, USE_ENDED


class UsageMixin(ParkingMixin, IntrospectionMixin):
    """The use a checkin ends (a park records its own: ``ParkingMixin.park``), and the
    histograms in ``get_stats()`` (the connect-time one is filled where connections
    are opened: base.py's ``_connected``)."""

    def get_stats(self) -> dict[str, Any]:
        stats = super().get_stats()
        with self._lock:
            stats.update(self.stats.histograms())
        return stats

    def _record_use(self, record: ConnectionRecord, now: float) -> None:
        """At checkin, under the lock: the use since the checkout, unless a park of
        this same checkout recorded it."""
        checked_out_at = record.last_checkout_at
        if checked_out_at is not None and record.info.get(USE_ENDED) is not checked_out_at:
            seconds = now - checked_out_at
            use_time = self.stats.use_time
            use_time.counts[bisect_left(USE_BUCKETS, seconds)] += 1
            use_time.total += seconds
