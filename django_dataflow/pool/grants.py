"""What a waiting borrower is, and what it can be granted.

A borrower that finds nothing to take queues as a ``Waiter``. Whoever serves the queue
(a checkin, an opener thread, a freed slot, the pool closing) sets the waiter's grant
under the pool lock and wakes it: a connection record, or one of the grants below.
"""

from __future__ import annotations

import threading
from typing import Any

MAY_CONNECT = "may-connect"  # a slot was reserved for the waiter: it opens a new connection
POOL_CLOSED = "pool-closed"


class ConnectFailed:
    """The connect made for the queue failed with ``error`` (raised to the waiter)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Waiter:
    __slots__ = ("event", "grant", "since", "thread")

    def __init__(self, thread: threading.Thread, since: float) -> None:
        self.event = threading.Event()
        self.grant: Any = None
        self.thread = thread
        self.since = since
