"""ConnectionRecord: the life of one physical connection inside a pool.

A record outlives every checkout of its connection. Its ``info`` dict is the place for
per-connection state that hooks want to keep (as SQLAlchemy's ``connection_record.info``).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any


class ConnectionRecord:
    """One physical connection and what the pool knows about it.

    Times are ``time.monotonic()`` values unless the name says ``wall``.
    """

    __slots__ = (
        "__weakref__",
        "checkout_stack",
        "connection",
        "created_at",
        "created_wall",
        "generation",
        "holder",
        "idle_since",
        "info",
        "invalidated",
        "last_checkout_at",
        "leak_reported",
        "lease",
        "parks",
        "reclaimed",
        "recycle_deadline",
        "setup_done",
        "unparks",
    )

    def __init__(self, connection: Any, *, generation: int, recycle_at: float | None) -> None:
        now = time.monotonic()
        self.connection = connection
        self.created_at = now
        self.created_wall = time.time()
        self.generation = generation
        # When the connection is due for recycling; infinity when never, so that one
        # comparison (``now >= record.recycle_deadline``) tells, on the hot paths too.
        self.recycle_deadline = math.inf if recycle_at is None else recycle_at
        self.info: dict[str, Any] = {}
        # Set while checked out: a number identifying this checkout, and the thread
        # that holds it (None when the holder shares it across threads on purpose).
        self.lease = 0
        self.holder: threading.Thread | None = None
        # The lease of a checkout whose holder is gone (an ended thread, a collected
        # wrapper), once somebody took on returning it: only one of them does.
        self.reclaimed = 0
        self.last_checkout_at: float | None = None
        self.idle_since = now
        # Written only by the holder (see parking.py): times parked / taken back.
        self.parks = 0
        self.unparks = 0
        # Why the connection must not be reused (a reason string), or None.
        self.invalidated: str | None = None
        # For the owner of the pool: has per-physical-connection setup run?
        self.setup_done = False
        # Leak detection (only filled in when it is on).
        self.checkout_stack: str | None = None
        self.leak_reported = False

    @property
    def age(self) -> float:
        """Seconds since the physical connection was opened."""
        return time.monotonic() - self.created_at

    @property
    def recycle_at(self) -> float | None:
        """When the connection is due for recycling (``time.monotonic()``), or None."""
        return None if self.recycle_deadline == math.inf else self.recycle_deadline

    @recycle_at.setter
    def recycle_at(self, value: float | None) -> None:
        self.recycle_deadline = math.inf if value is None else value

    @property
    def checked_out(self) -> bool:
        return self.lease != 0

    @property
    def checked_out_for(self) -> float:
        """Seconds since the current checkout began (0 if idle)."""
        if not self.lease or self.last_checkout_at is None:
            return 0.0
        return time.monotonic() - self.last_checkout_at

    @property
    def thread(self) -> threading.Thread | None:
        """The thread holding the connection now (None if idle or deliberately shared)."""
        return self.holder

    @property
    def created(self) -> float:
        """When the physical connection was opened, as a ``time.time()`` timestamp."""
        return self.created_wall

    def invalidate(self, reason: str = "manual") -> None:
        """Mark the connection so it is closed instead of reused when it comes back."""
        if self.invalidated is None:
            self.invalidated = reason

    def __repr__(self) -> str:
        state = "out" if self.lease else "idle"
        return f"<ConnectionRecord {state} age={self.age:.1f}s gen={self.generation}>"
