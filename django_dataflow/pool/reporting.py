"""What the pool tells the logs and its errors: the snapshot of a pool at one moment.

Log records of a pool carry ``extra`` fields (``alias``, ``vendor``, ``pool_size``,
``checked_out``, ``waiting``, ``waited``), so that JSON formatters and Sentry show them
beside the message; a checkout timeout carries the same snapshot, plus
``max_overflow`` and ``last_connect_error``, as attributes of PoolTimeoutError. They
are built only where a record is logged or an error raised, never on the borrowing
path. The engine knows no vendor: the backends name it when they make a pool.

Also the per-task wait accumulator: ``collect_waits()`` makes the waits of the
checkouts that queue (in this thread, or the context it runs in) add up in a
``WaitTotal``, which Server-Timing reports (``django_dataflow.monitoring.timing``). A
checkout that does not queue never looks at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django_dataflow.pool.errors import PoolTimeoutError

if TYPE_CHECKING:
    from django_dataflow.pool.base import PoolState


def log_extra(pool: PoolState, waited: float | None = None) -> dict[str, Any]:
    """The ``extra`` of a log record about ``pool`` (read without the lock: lengths
    read at one moment, good enough for a log line)."""
    return {
        "alias": pool.name,
        "vendor": pool.vendor,
        "pool_size": pool.pool_size,
        "checked_out": len(pool._out) - len(pool._parked),
        "waiting": len(pool._waiters),
        "waited": waited,
    }


def timeout_error(pool: PoolState, waited: float, cause: BaseException | None) -> PoolTimeoutError:
    """Under the lock, the timed-out waiter out of the queue: the error it raises."""
    checked_out = len(pool._out) - len(pool._parked)
    waiting = len(pool._waiters)
    failed = f" The last connect failed: {type(cause).__name__}: {cause}." if cause else ""
    message = (
        f"Timed out after {waited:.2f}s waiting for a connection from the pool of "
        f"database {pool.name!r}: {checked_out} of {pool.max_connections} connections "
        f"checked out (pool_size={pool.pool_size} + pool_max_overflow={pool.max_overflow}), "
        f"{waiting} other requests waiting. Raise pool_size / pool_max_overflow, or return "
        f"connections sooner.{failed}"
    )
    return PoolTimeoutError(
        message,
        last_connect_error=cause,
        alias=pool.name,
        vendor=pool.vendor,
        pool_size=pool.pool_size,
        max_overflow=pool.max_overflow,
        checked_out=checked_out,
        waiting=waiting,
        waited=waited,
    )


class WaitTotal:
    """The waits for connections of one request or task, in seconds."""

    __slots__ = ("count", "seconds")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0

    def add(self, seconds: float) -> None:
        self.seconds += seconds
        self.count += 1


# A mutable total, not a number: asgiref runs a sync view in a copy of the context,
# where a new value set would be lost; an added wait is not.
current_waits: ContextVar[WaitTotal | None] = ContextVar("dataflow_waits", default=None)


@contextmanager
def collect_waits() -> Iterator[WaitTotal]:
    """Add up the waits of the checkouts made inside the block (in this context)."""
    total = WaitTotal()
    token = current_waits.set(total)
    try:
        yield total
    finally:
        current_waits.reset(token)


def note_wait(seconds: float) -> None:
    """A checkout queued for ``seconds``: add them to the collecting total, if any."""
    total = current_waits.get()
    if total is not None:
        total.add(seconds)
