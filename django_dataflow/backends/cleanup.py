"""What a connection must not carry to its next borrower: cleaned before it goes back.

With Django's own backend a request's connection is closed at the end of it, and the
session's state goes with it. A pooled connection lives on, so what a request left in its
session is undone here before the connection is given back or parked: server-side cursors
still open (their names and snapshots would reach the next borrower), and foreign-key
checks turned off (the next borrower would write rows that break foreign keys unchecked).
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

from django_dataflow.pool.reporting import log_extra

if TYPE_CHECKING:
    # For the type checker, the mixins sit on the Django wrapper they are mixed in front
    # of (Django ships no types: its names are Any to mypy).
    from django.db.backends.base.base import BaseDatabaseWrapper as WrapperBase
else:
    WrapperBase = object

logger = logging.getLogger("django_dataflow.pool")


class SessionCleanupMixin(WrapperBase):
    """Mixed into PooledDatabaseWrapperMixin, which provides the lease."""

    # Server-side cursors declared since the connection was last given back (None until
    # the first: vendors that have them fill it), closed before it goes back again.
    _dataflow_open_cursors: list[weakref.ref[Any]] | None = None
    # True between disable_constraint_checking() and enable_constraint_checking(): a
    # connection is never given back with its foreign-key checks off.
    _dataflow_constraints_off = False

    def _dataflow_close_open_cursors(self) -> None:
        """Close the server-side cursors still open on the connection before it goes
        back. PostgreSQL's ``QuerySet.iterator()`` declares its cursor ``WITH HOLD`` in
        autocommit mode: it lives in the session, and the next borrower would inherit it
        (and its name, which a new wrapper in a reused thread generates again). With
        Django's own backend the connection, and the cursor with it, is closed."""
        cursors, self._dataflow_open_cursors = self._dataflow_open_cursors or (), None
        for ref in cursors:
            cursor = ref()
            if cursor is None:
                continue  # collected, and closed with it
            try:
                cursor.close()  # a round trip, only for a cursor left open
            except Exception:
                record = self._dataflow_lease.record
                if record is not None:
                    record.invalidate("server_cursor_left_open")

    def _dataflow_track_cursor(self, cursor: Any) -> None:
        """Close ``cursor`` before the connection goes back (vendors call it from
        create_cursor). Held weakly, in a list: a WeakSet costs microseconds a request."""
        cursors = self._dataflow_open_cursors
        if cursors is None:
            self._dataflow_open_cursors = [weakref.ref(cursor)]
            return
        count = len(cursors)
        if count >= 64 and not count & (count - 1):  # (a script that never closes)
            cursors[:] = [ref for ref in cursors if ref() is not None]
        cursors.append(weakref.ref(cursor))

    def disable_constraint_checking(self) -> bool:
        disabled = super().disable_constraint_checking()
        if disabled:
            self._dataflow_constraints_off = True
        return disabled

    def enable_constraint_checking(self) -> None:
        super().enable_constraint_checking()
        self._dataflow_constraints_off = False

    def _dataflow_enable_constraints(self) -> str | None:
        """Turn foreign-key checks back on before the connection goes back, as its
        session ending would with Django's own backend (``SET foreign_key_checks`` on
        MySQL, ``PRAGMA foreign_keys`` on SQLite last for the session). The next
        borrower must not write rows that break foreign keys unchecked. A connection
        that cannot be fixed is discarded (the reason it returns)."""
        try:
            self.enable_constraint_checking()
        except Exception:
            logger.warning(
                "Could not turn foreign-key checks back on for a connection of %r; discarding it.",
                self.alias,
                extra=log_extra(pool) if (pool := self._dataflow_lease.pool) is not None else None,
            )
            return "constraint_checks_off"
        return None
