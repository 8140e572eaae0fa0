"""What a waiting borrower is, and what it can be granted.

A borrower that finds nothing to take queues as a ``Waiter``. Whoever serves the queue
(a checkin, an opener thread, the pool closing) sets the waiter's grant under the pool
lock and wakes it: a connection record, a failed connect or ``POOL_CLOSED``.
"""

from __future__ import annotations

import enum
import threading
from typing import Final, Literal

from django_dataflow.pool.record import ConnectionRecord


class Token(enum.Enum):
    """Grants that are not a connection (an enum, so that type checkers narrow ``is``)."""

    # Not a waiter's grant: what checkout() reserves for a borrower on a pool with
    # nothing open or opening (nothing could come back sooner), which then connects.
    MAY_CONNECT = "may-connect"
    POOL_CLOSED = "pool-closed"


MAY_CONNECT: Final = Token.MAY_CONNECT
POOL_CLOSED: Final = Token.POOL_CLOSED


class ConnectFailed:
    """The connect made for the queue failed with ``error`` (raised to the waiter)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


# What a waiter may be granted (never MAY_CONNECT).
Grant = ConnectionRecord | ConnectFailed | Literal[Token.POOL_CLOSED]


class Waiter:
    __slots__ = ("abandoned", "event", "grant", "openers", "since", "thread")

    def __init__(self, thread: threading.Thread, since: float) -> None:
        self.event = threading.Event()
        self.grant: Grant | None = None
        self.thread = thread
        self.since = since
        # What the borrower does once out of the lock, before it waits: start the
        # openers reserved for the queue, return connections of ended threads.
        self.openers = 0
        self.abandoned: list[tuple[ConnectionRecord, int]] = []
