"""Who holds a connection checked out in a gevent greenlet.

The pool records the borrowing thread, and asks it ``is_alive()`` to find connections
nobody will take back (a parked connection of a thread that ended, a checkout whose
thread died holding it). Under gevent's monkey-patching each greenlet is a "thread" of
its own, a ``threading._DummyThread``, which says it is alive for ever: gunicorn's gevent
worker serves each client connection in a new greenlet, so every request's parked
connection would look held by a live thread, and the pool would open a new connection
for every request up to its limit. The backend records such a checkout's greenlet
instead, which knows when it has ended.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

# The class CPython (and gevent, which subclasses it) uses for a thread it did not start.
DummyThread: type = threading._DummyThread


class GreenletHolder:
    """A record's holder while a gevent greenlet has it: alive while the greenlet is."""

    __slots__ = ("greenlet", "name", "thread")

    def __init__(self, thread: threading.Thread, greenlet: Any) -> None:
        self.thread = thread
        self.greenlet = greenlet
        self.name = thread.name

    def is_alive(self) -> bool:
        return not self.greenlet.dead

    def __repr__(self) -> str:
        return f"<GreenletHolder {self.name} {'alive' if self.is_alive() else 'ended'}>"


def adopt(record: Any) -> None:
    """Called after a checkout whose holder is a ``_DummyThread``: in a spawned greenlet
    (not a real thread's own main greenlet), record the greenlet as the holder."""
    module = sys.modules.get("greenlet")
    if module is None:
        return  # a thread started outside threading (C code): nothing better to record
    current = module.getcurrent()
    if current.parent is not None:
        record.holder = GreenletHolder(record.holder, current)
