"""Connections checked out right now: the guide's ``db.get_active_connections()``."""

from __future__ import annotations

import threading
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from django_dataflow.pool import registry


class ActiveConnection:
    """A read-mostly view of one checked-out pooled connection."""

    __slots__ = ("_record", "alias")

    def __init__(self, alias: str, record: Any) -> None:
        self.alias = alias
        self._record = record

    @property
    def age(self) -> float:
        """Seconds since the physical connection was opened."""
        return self._record.age

    @property
    def checked_out_for(self) -> float:
        """Seconds since its current borrower checked it out."""
        return self._record.checked_out_for

    @property
    def info(self) -> dict[str, Any]:
        """The connection record's ``info`` dict (shared with the hooks)."""
        return self._record.info

    @property
    def thread(self) -> threading.Thread | None:
        """The borrowing thread (None for a connection shared across threads on purpose)."""
        return self._record.thread

    def invalidate(self, reason: str = "manual") -> None:
        """Discard the connection when it comes back instead of reusing it.

        If the calling thread holds it, it is closed (given back and discarded) now.
        """
        record = self._record
        record.invalidate(reason)
        if record.holder is not threading.current_thread():
            return
        for wrapper in connections.all(initialized_only=True):
            if getattr(wrapper, "dataflow_record", None) is record:
                wrapper.close()

    def __repr__(self) -> str:
        return (
            f"<ActiveConnection {self.alias!r} age={self.age:.1f}s "
            f"out for {self.checked_out_for:.1f}s>"
        )


def get_active_connections(using: str = DEFAULT_DB_ALIAS) -> list[ActiveConnection]:
    """The connections of ``using``'s pools in this process that are checked out now."""
    return [
        ActiveConnection(using, record)
        for pool in registry.all_pools(using)
        for record in pool.checked_out_records()
    ]
