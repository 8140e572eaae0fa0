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
    """A queued borrower. Woken once, by whoever sets its grant (under the pool lock,
    after taking it out of the queue), with :meth:`wake`; it sleeps in :meth:`sleep`.

    The wake-up is a bare lock, held from birth and released to wake the waiter: one C
    call on each side. A ``threading.Event`` does the same through a Condition, a
    Python-level lock list and a lock allocated per wait, which costs several
    microseconds on every hand-over of a connection to a waiting request.
    """

    __slots__ = ("_asleep", "abandoned", "grant", "openers", "since", "thread")

    def __init__(self, thread: threading.Thread, since: float) -> None:
        self._asleep = threading.Lock()
        self._asleep.acquire()
        self.grant: Grant | None = None
        self.thread = thread
        self.since = since
        # What the borrower does once out of the lock, before it waits: start the
        # openers reserved for the queue, return connections of ended threads.
        self.openers = 0
        self.abandoned: list[tuple[ConnectionRecord, int]] = []

    def wake(self) -> None:
        """Under the pool lock, once per waiter (it has just left the queue)."""
        self._asleep.release()

    def sleep(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for :meth:`wake`; True once woken (then at
        once on every later call, as ``Event.wait``)."""
        if self._asleep.acquire(timeout=timeout):
            self._asleep.release()
            return True
        return False
