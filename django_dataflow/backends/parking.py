"""Thread affinity on the Django side: park a request's connection, take it back.

The pool's half is ``pool/parking.py``. This half decides *when* to park (the end of a
request, through Django's ``close_if_unusable_or_obsolete()``, and only a connection Django
would find nothing wrong with) and makes sure that no code on the wrapper can reach a
parked connection: the wrapper forgets it, and the first read of ``self.connection`` takes
it back (or finds it taken and answers None, so Django connects, which checks one out).

The *settings epoch* is why a parked connection may be given back instead of taken back:
the thread's next read of ``wrapper.connection`` takes it without going through
``connect()`` and its full check (the connection parameters and the pool key). Test-database
setup changes an entry behind the wrappers' backs: ``create_test_db()`` writes the test
database's ``NAME`` into the dict every thread's wrapper shares, ``set_as_test_mirror()``
swaps a mirror's dict, the parallel runner's workers switch to their clones, and
``override_settings`` may change anything. Each bumps the epoch, and so does every
``connect()`` that finds its wrapper's entry changed since its last; a wrapper remembers
the epoch it checked out under, and a parked connection taken back under another goes
back to its pool instead, so Django connects through ``connect()``, which finds the pool
the settings now lead to. A change in place that bumps nothing (a tenant middleware
setting ``settings_dict["NAME"]``) is caught by the unpark's own comparison of the entry
with the one of the checkout, the check ``connect()`` starts with. That comparison is
made at the first take-back of each request (with the transaction scope a request takes
its connection back at every query): a change in the middle of a request reaches the
connection at the next request, as with Django's own backend, whose connection stays
open until the request ends.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.db.backends.signals import connection_created

from django_dataflow.backends import tracing
from django_dataflow.signals import pool_checkin, pool_checkout

if TYPE_CHECKING:
    # For the type checker, the mixins sit on the Django wrapper they are mixed in front
    # of (Django ships no types: its names are Any to mypy).
    from django.db.backends.base.base import BaseDatabaseWrapper as WrapperBase
else:
    WrapperBase = object


class _Epoch:
    value = 0


epoch = _Epoch()


def bump_settings_epoch(**kwargs: Any) -> None:
    """A settings entry may have changed in place (also a ``setting_changed`` receiver)."""
    epoch.value += 1


def connect_receivers() -> None:
    """Bump the settings epoch whenever a setting changes (idempotent)."""
    setting_changed.connect(bump_settings_epoch, dispatch_uid="django_dataflow.settings_epoch")


class _ParkedConnection:
    """The wrapper's ``connection`` attribute while its connection is parked.

    Django keeps the DB-API connection in the instance attribute ``connection`` and reads
    it everywhere (``ensure_connection``, ``commit``, ``close`` …). Parking deletes the
    instance attribute, so the next read lands here, in this non-data descriptor, which
    takes the connection back from the pool (or finds it taken and answers None, which
    Django treats as "not connected yet"). While the instance attribute exists, reads
    never get here and cost nothing extra.
    """

    def __get__(self, wrapper: Any, owner: type | None = None) -> Any:
        """Take the parked connection back (the first read of ``wrapper.connection``
        after parking); None if another thread took it or it is due the checks of a
        checkout, and Django then connects, which checks one out. (The take-back is
        here rather than in a method this calls: it runs once per request, once per
        query with the transaction scope, and a call is a good part of its cost.)"""
        if wrapper is None:
            return self
        wrapper._dataflow_parked = False
        lease = wrapper._dataflow_lease
        connection = None
        record = lease.record
        if record is not None:
            if (
                pool_checkout.receivers
                or pool_checkin.receivers
                or (wrapper._dataflow_epoch != epoch.value)
                or (
                    # Once a request (a take-back per query with the transaction scope).
                    not wrapper._dataflow_settings_seen
                    and wrapper._dataflow_last.settings != wrapper.settings_dict
                )
            ):
                # Hooks connected since it was parked promise a checkout and a checkin
                # per request; or the settings entry may have changed since (the test
                # database was set up: the settings epoch; a tenant middleware set
                # settings_dict["NAME"] in place). Give it back quietly (its
                # checkout sent no signal; unless another thread took it meanwhile)
                # and let Django connect, which checks out with the signal, from the
                # pool the settings lead to now: one checkout for the request.
                lease.pool.give_back_parked(record, lease.token)
            elif lease.pool.unpark(record, lease.token):
                connection = record.connection
                wrapper._dataflow_settings_seen = True
                if tracing.active:
                    tracing.checked_out(wrapper, record, tracing.PARKED, 0.0)
        if connection is None:
            lease.clear()
        wrapper.connection = connection
        if connection is not None and connection_created.receivers:
            return wrapper._dataflow_taken_back(record)
        return connection


_PARKED_CONNECTION = _ParkedConnection()


class ParkingWrapperMixin(WrapperBase):
    """Mixed into PooledDatabaseWrapperMixin, which provides the lease and the pool."""

    connection = _PARKED_CONNECTION
    _dataflow_parked = False
    _dataflow_epoch = 0  # the settings epoch at the last checkout
    # The settings entry was compared at a take-back in this request (see __get__).
    _dataflow_settings_seen = False
    # The Django cursors open on the connection held (backends/scope.py).
    _dataflow_live_cursors: list[weakref.ref[Any]] | None = None

    def close_if_unusable_or_obsolete(self) -> None:
        # Run by close_old_connections() at the start and the end of every request. Where
        # Django (CONN_MAX_AGE = 0) would close the connection, park it: the thread's next
        # request takes it back for the price of a dictionary lookup. Anything unusual
        # takes Django's path, which checks the connection in.
        self._dataflow_created_for = None  # (a request starts or ends: backends/scope.py)
        self._dataflow_settings_seen = False
        if self._dataflow_parked:
            return  # parked at the end of the last request: nothing to check
        if not self._dataflow_park():
            return super().close_if_unusable_or_obsolete()
        # As Django does for a connection it keeps: health-check it before its next use.
        self.health_check_done = False

    def _dataflow_park(self) -> bool:
        """Park the connection held, if it may be: with thread affinity on, no hooks
        that promise a checkin, and nothing Django would find wrong with it (an error,
        an open transaction, a changed autocommit mode, constraint checks off, the
        connection shared with other threads). False: nothing was done."""
        lease = self._dataflow_lease
        pool = lease.pool
        if (
            lease.record is None
            or not pool.thread_affinity
            or self.errors_occurred
            or self.in_atomic_block
            or self.autocommit != self.settings_dict["AUTOCOMMIT"]
            or self._dataflow_constraints_off
            or self._thread_sharing_count
            or pool_checkout.receivers
            or pool_checkin.receivers
        ):
            return False
        if self._dataflow_live_cursors is not None:
            self._dataflow_close_live_cursors()
        if self._dataflow_open_cursors is not None:
            self._dataflow_close_open_cursors()
        # Forget the connection before it becomes lendable to other threads.
        connection = self.__dict__.pop("connection", None)
        self._dataflow_parked = True
        if connection is not lease.record.connection or not pool.park(
            lease.record, lease.token
        ):  # (the first: self.connection was overwritten behind Django's back)
            self._dataflow_parked = False
            self.connection = connection
            return False
        if tracing.active:
            tracing.checked_in(self, "parked")
        return True

    def _dataflow_unpark(self) -> Any:
        """Take the parked connection back now (see ``_ParkedConnection.__get__``)."""
        return _PARKED_CONNECTION.__get__(self)

    def _dataflow_taken_back(self, record: Any) -> Any:
        """Hook: a parked connection was taken back and ``connection_created`` has
        receivers (PooledDatabaseWrapperMixin sends it); returns the connection."""
        return self.connection
