"""Leak detection: connections checked out for longer than a threshold.

The guide's ConnectionLeakDetectorNode (leak_threshold, check_interval, action). The
pool's housekeeper calls ``find`` under the pool's lock at most every ``check_interval``
seconds; reporting happens outside the lock. A leak is reported once per checkout, with
the stack where the connection was checked out — captured only while detection is on,
because capturing a stack costs tens of microseconds per checkout.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django_dataflow.pool.record import ConnectionRecord
from django_dataflow.pool.reporting import log_extra

if TYPE_CHECKING:
    from django_dataflow.pool.base import PoolState

logger = logging.getLogger("django_dataflow.pool")

LEAK_ACTIONS = ("log", "log_and_recycle")


class LeakDetector:
    def __init__(self, threshold: float | None, action: str, check_interval: float) -> None:
        if action not in LEAK_ACTIONS:
            raise ValueError(f"leak_action must be one of {', '.join(LEAK_ACTIONS)}")
        self.threshold = threshold or None  # None: detection off
        self.action = action
        self.check_interval = check_interval
        self._next_check = 0.0

    def remember_checkout(self, record: ConnectionRecord) -> None:
        """Keep where ``record`` was checked out (the caller's stack, without this frame
        and the pool's own)."""
        record.checkout_stack = "".join(traceback.format_stack(limit=24)[:-2])

    def find(self, checked_out: Iterable[ConnectionRecord], now: float) -> list[ConnectionRecord]:
        """Under the pool's lock: connections out too long and not yet reported."""
        if not self.threshold or now < self._next_check:
            return []
        self._next_check = now + self.check_interval
        leaked = [
            record
            for record in checked_out
            if not record.leak_reported
            and record.last_checkout_at is not None
            and now - record.last_checkout_at > self.threshold
        ]
        for record in leaked:
            record.leak_reported = True
        return leaked

    def report(self, pool: PoolState, record: ConnectionRecord, now: float) -> None:
        """Log the leak, mark the connection for disposal if asked, tell the listener."""
        holder = record.holder.name if record.holder is not None else "(shared)"
        recycle = self.action == "log_and_recycle"
        logger.warning(
            "Possible connection leak on %r: a connection has been checked out for %.1fs "
            "(pool_leak_threshold=%gs) by thread %s%s. It was checked out at:\n%s",
            pool.name,
            now - (record.last_checkout_at or now),
            self.threshold,
            holder,
            "; it will be closed when it comes back" if recycle else "",
            record.checkout_stack or "(stack not captured)",
            extra=log_extra(pool),
        )
        if recycle:
            record.invalidate("leak")
        if pool.events is not None:
            try:
                pool.events.leaked(pool, record)
            except Exception:
                logger.exception("A pool_leak receiver of %r failed.", pool.name)

    def report_return(self, pool: PoolState, record: ConnectionRecord, now: float) -> None:
        """A connection reported as leaked came back: say so, once."""
        logger.warning(
            "A connection of %r reported as leaked came back after %.1fs.",
            pool.name,
            now - (record.last_checkout_at or now),
            extra=log_extra(pool),
        )
        record.leak_reported = False
