"""Transaction-scoped checkout (``POOL["pool_scope"] = "transaction"``): a wrapper holds
its connection only while a query or a transaction needs it.

With the default scope (``"request"``) a request holds its connection from its first
query to ``request_finished``: a view that queries, waits 300 ms on an HTTP API and
queries again holds a server session all along. With ``"transaction"`` the connection
goes back as soon as it is idle outside a transaction, and the next query checks one out
again (with thread affinity usually the same one, for the price of taking a parked
connection back). The moments it goes back:

* a Django cursor is closed and no other Django cursor of the wrapper is open (the ORM
  closes its cursor once it has read the rows; a cursor that is still open could run
  another query, on this very connection, so it keeps the connection);
* the outermost ``atomic()`` block exits (``set_autocommit(True)``, after the
  ``on_commit`` callbacks ran);
* a ``pooled_session()`` block ends.

It is kept while anything could still need this particular session: a transaction
(``atomic()``, or autocommit turned off by hand), an open cursor (``QuerySet.iterator()``
and its server-side cursor included), foreign-key checks turned off, a ``pooled_session()``
block, a connection shared with other threads, and ``connect()``'s own set-up.

"Goes back" is parking when it may park (``backends/parking.py``: thread affinity on, no
checkout or checkin hooks, nothing wrong with the connection) and a full checkin
otherwise, through ``close()``. Parking keeps the cost of a query close to a persistent
connection's; a checkin resets the connection, and hooks see a checkout and a checkin per
transaction.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db.backends.utils import CursorWrapper

if TYPE_CHECKING:
    # For the type checker, the mixins sit on the Django wrapper they are mixed in front
    # of (Django ships no types: its names are Any to mypy).
    from django.db.backends.base.base import BaseDatabaseWrapper as WrapperBase
else:
    WrapperBase = object

REQUEST = "request"
TRANSACTION = "transaction"
# The engine's overflow_delay under the transaction scope: a waiter waits this long for a
# connection to come back before the pool opens one beyond pool_size for it. Connections
# are held for a transaction, not a request, and come back within milliseconds, so a
# burst is served by the pool_size connections instead of opening the overflow (measured
# with benchmarks/run.py --workloads c; docs/design.md). The request scope opens at once.
TRANSACTION_OVERFLOW_DELAY = 0.2


class _ScopedCursor:
    """Put in front of a Django cursor wrapper's class: tells the wrapper when the
    cursor is closed (the ORM closes every cursor once it has read its rows)."""

    _dataflow_closed = False

    def close(self) -> None:
        self._dataflow_closed = True
        try:
            self.cursor.close()  # type: ignore[attr-defined]  # (Django's CursorWrapper)
        finally:
            db = self.db  # type: ignore[attr-defined]
            live = db._dataflow_live_cursors
            if live is not None and len(live) == 1 and live[0]() is self:
                # The common case, inlined (two calls per query): the wrapper's only
                # cursor, and _dataflow_end_of_scope's checks.
                db._dataflow_live_cursors = None
                if not (
                    db._dataflow_pins
                    or not db.autocommit
                    or db._dataflow_parked
                    or db.closed_in_transaction
                    or db._dataflow_park()
                ):
                    db._dataflow_check_in_unparked()
            else:
                db._dataflow_cursor_closed()


# Django's cursor wrapper class -> the same with _ScopedCursor in front (a vendor may
# have its own, PostgreSQL's debug cursor has copy()).
_scoped_classes: dict[type, type] = {}


def _scoped_class(cursor_class: type) -> type:
    scoped = _scoped_classes.get(cursor_class)
    if scoped is None:
        scoped = type(f"Scoped{cursor_class.__name__}", (_ScopedCursor, cursor_class), {})
        _scoped_classes[cursor_class] = scoped
    return scoped


# The class of the cursors make_cursor returns under the transaction scope.
_ScopedCursorWrapper = _scoped_class(CursorWrapper)


class TransactionScopeMixin(WrapperBase):
    """Mixed into PooledDatabaseWrapperMixin, which provides the lease and parking."""

    # pool_scope == "transaction" (set from the entry's options with the pool).
    _dataflow_transaction_scope = False
    # The cursors made by make_cursor must be closed before the connection goes back
    # (vendors set it: SQLite's every cursor, whose rows left unread hold a WAL read
    # snapshot; MySQL's on a connection whose cursor class streams its rows). With the
    # request scope each is tracked (SessionCleanupMixin._dataflow_track_cursor); with
    # the transaction scope the Django cursors wrapping them are tracked already and
    # closed the same way (_dataflow_close_live_cursors).
    _dataflow_tracks_cursors = False
    # (SessionCleanupMixin's: the DB-API cursors to close before the connection goes back.)
    _dataflow_open_cursors: list[weakref.ref[Any]] | None = None
    # Reasons to keep the connection whatever else says: pooled_session() blocks, and
    # connect()'s set-up (its queries close cursors too).
    _dataflow_pins = 0
    # The Django cursors made on the connection held (weakly: a cursor collected
    # without close() cannot run a query any more); None when there are none.
    # ParkingWrapperMixin declares it too: it forgets them when it parks the connection.
    _dataflow_live_cursors: list[weakref.ref[Any]] | None = None
    # The connection connection_created was last sent for in this request: with
    # transaction scope a request takes its parked connection back at every query, and
    # the signal reaches it once a request, as with the request scope (docs/hooks.md).
    _dataflow_created_for: Any = None

    def make_cursor(self, cursor: Any) -> Any:
        # Django's own make_cursor, inlined (a call per query; no vendor overrides it,
        # tests/backends/test_transaction_scope.py checks that it is still this).
        if self._dataflow_transaction_scope and self._dataflow_lease.record is not None:
            # Made as the scoped class, never switched to it: an object whose class was
            # switched after it was made reads every attribute the slow way.
            wrapped = _ScopedCursorWrapper(cursor, self)
            # _dataflow_track_live, its common case inlined (a call per query).
            if self._dataflow_live_cursors is None:
                self._dataflow_live_cursors = [weakref.ref(wrapped)]
            else:
                self._dataflow_track_live(wrapped)
            return wrapped
        wrapped = CursorWrapper(cursor, self)
        if self._dataflow_tracks_cursors:
            # _dataflow_track_cursor, its common case inlined (a call per query).
            if self._dataflow_open_cursors is None:
                self._dataflow_open_cursors = [weakref.ref(cursor)]
            else:
                self._dataflow_track_cursor(cursor)
        return wrapped

    def make_debug_cursor(self, cursor: Any) -> Any:
        wrapped = super().make_debug_cursor(cursor)
        if self._dataflow_transaction_scope:
            return self._dataflow_scoped(wrapped)
        if self._dataflow_tracks_cursors:
            self._dataflow_track_cursor(cursor)
        return wrapped

    def _dataflow_scoped(self, wrapped: Any) -> Any:
        # (Only for the debug cursor, which the vendor makes: its class is switched.)
        if self._dataflow_lease.record is None:
            return wrapped  # not a pooled connection (__no_db__, SQLite in memory)
        wrapped.__class__ = _scoped_class(wrapped.__class__)
        self._dataflow_track_live(wrapped)
        return wrapped

    def _dataflow_track_live(self, wrapped: Any) -> None:
        """Remember a Django cursor open on the connection held (weakly)."""
        live = self._dataflow_live_cursors
        if live is None:
            self._dataflow_live_cursors = [weakref.ref(wrapped)]
        else:
            live.append(weakref.ref(wrapped))

    def _dataflow_cursor_closed(self) -> None:
        live = self._dataflow_live_cursors
        if live is not None:
            if len(live) > 1:
                live = [ref for ref in live if _is_open(ref)]
                if live:
                    self._dataflow_live_cursors = live
                    return
            elif _is_open(live[0]):
                return
            self._dataflow_live_cursors = None
        self._dataflow_end_of_scope()

    def set_autocommit(
        self, autocommit: bool, force_begin_transaction_with_broken_autocommit: bool = False
    ) -> None:
        # The outermost atomic() block ends with set_autocommit(True), which runs the
        # on_commit callbacks first (their queries must not give the connection back
        # halfway through): pinned until it returns.
        self._dataflow_pins += 1
        try:
            super().set_autocommit(autocommit, force_begin_transaction_with_broken_autocommit)
        finally:
            self._dataflow_pins -= 1
        if autocommit and self._dataflow_transaction_scope:
            self._dataflow_end_of_scope()

    def disable_constraint_checking(self) -> bool:
        # Its query closes a cursor before the flag that keeps the connection is set.
        self._dataflow_pins += 1
        try:
            return bool(super().disable_constraint_checking())
        finally:
            self._dataflow_pins -= 1

    def _dataflow_end_of_scope(self) -> None:
        """Give the connection back unless a transaction, an open cursor or a pin
        needs this session."""
        if (
            self._dataflow_pins
            or not self.autocommit
            or self._dataflow_parked
            or self.closed_in_transaction
            or (self._dataflow_live_cursors and any(map(_is_open, self._dataflow_live_cursors)))
        ):
            return
        if not self._dataflow_park():
            self._dataflow_check_in_unparked()

    def _dataflow_check_in_unparked(self) -> None:
        """The connection is idle but was not parked: check it in through ``close()``,
        unless parking refused because something keeps it (an atomic block, foreign-key
        checks off, a shared connection; or there is no pooled connection held)."""
        if (
            self.in_atomic_block
            or self._dataflow_lease.record is None
            or self._dataflow_constraints_off
            or self._thread_sharing_count
        ):
            return
        self.close()

    def _dataflow_close_live_cursors(self) -> None:
        """Close the Django cursors still open when the connection goes back all the
        same (the end of a request, ``close()``), as the session's end would with
        Django's own backend: a SQLite cursor with a SELECT not read to its end holds its
        WAL read snapshot, which the next borrower would read the database through. With
        the transaction scope these stand in for the DB-API cursors that ``make_cursor``
        tracks otherwise (``_dataflow_tracks_cursors``)."""
        live, self._dataflow_live_cursors = self._dataflow_live_cursors, None
        for ref in live or ():
            cursor = ref()
            if cursor is None or cursor._dataflow_closed:
                continue
            cursor._dataflow_closed = True
            try:
                cursor.cursor.close()  # the DB-API cursor: no _ScopedCursor.close() here
            except Exception:
                record = self._dataflow_lease.record
                if record is not None:
                    record.invalidate("server_cursor_left_open")

    @contextmanager
    def dataflow_session(self) -> Iterator[Any]:
        """Keep one connection for the block (see ``api.pooled_session``)."""
        self._dataflow_pins += 1
        try:
            self.ensure_connection()
            yield self
        finally:
            self._dataflow_pins -= 1
            if self._dataflow_transaction_scope and not self._dataflow_pins:
                self._dataflow_end_of_scope()


def _is_open(ref: weakref.ref[Any]) -> bool:
    cursor = ref()
    return cursor is not None and not cursor._dataflow_closed
