"""PooledDatabaseWrapperMixin: the only glue between the pool and Django's connection
lifecycle.

Django opens a connection with ``connect()`` → ``get_new_connection()`` and, with
``CONN_MAX_AGE = 0``, closes it at the end of every request with ``close()`` →
``_close()``. The mixin turns the first into a checkout and the second into a checkin:

* ``get_new_connection`` checks a connection out of the pool for this alias and these
  effective connection parameters (so a changed NAME reaches another pool);
* ``connect`` runs Django's per-connection setup (autocommit, ``init_connection_state``)
  once per *physical* connection; a reused connection only gets its autocommit mode
  restored. ``connection_created`` is sent at every checkout (also when a parked
  connection is taken back), as with Django's own pool, when it has receivers;
* ``_close`` returns the connection; a connection closed inside an atomic block is really
  closed, exactly as Django does without a pool, because Django keeps using it until the
  block exits;
* at the end of a request (``close_if_unusable_or_obsolete``) an idle, clean connection is
  *parked* rather than returned: it stays with this wrapper for the thread's next request,
  lendable to any other thread meanwhile (``pool/parking.py``). The wrapper forgets the
  DB-API connection while it is parked, and takes it back the first time anything reads
  ``self.connection`` (``backends/parking.py``): no request ever uses a connection that
  another thread may have taken;
* errors that mean "the server is gone" mark the connection for disposal and make the
  pool check its siblings before their next use.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS
from django.db.backends.signals import connection_created
from django.db.utils import DatabaseErrorWrapper
from django.utils.functional import cached_property

from django_dataflow import hooks
from django_dataflow.backends import events, greenlets, parking, tracing
from django_dataflow.backends.cleanup import SessionCleanupMixin
from django_dataflow.backends.connector import DjangoConnector
from django_dataflow.backends.lease import LastPool, Lease, return_lease
from django_dataflow.backends.parking import ParkingWrapperMixin
from django_dataflow.backends.pools import (
    PoolChoiceMixin,
    install_process_hooks,
    latest_options,
)
from django_dataflow.backends.scope import (
    TRANSACTION_OVERFLOW_DELAY,
    TransactionScopeMixin,
)
from django_dataflow.backends.server import ServerQueries
from django_dataflow.errors import PoolClosed, PoolTimeout
from django_dataflow.pool import ConnectionPool, PoolClosedError, PoolTimeoutError, registry
from django_dataflow.pool.reporting import log_extra
from django_dataflow.settings.options import pool_arguments
from django_dataflow.settings.validation import resolve_pool_options, without_pool_options
from django_dataflow.signals import pool_checkin, pool_checkout, pool_connect

logger = logging.getLogger("django_dataflow.pool")

__all__ = ["PooledDatabaseWrapperMixin", "install_process_hooks"]

NO_DB_ALIAS = "__no_db__"  # Django's alias for its maintenance connections


class _PoolAwareErrorWrapper(DatabaseErrorWrapper):
    """Django's error translator, plus: a disconnect-class error condemns the connection."""

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            return None  # every query that worked: skip the call to Django's __exit__
        self.wrapper._dataflow_note_error(exc_value)
        return super().__exit__(exc_type, exc_value, traceback)


class PooledDatabaseWrapperMixin(
    ParkingWrapperMixin, TransactionScopeMixin, SessionCleanupMixin, PoolChoiceMixin
):
    """Mix in front of a Django ``DatabaseWrapper`` to pool its connections."""

    connector_class: type[DjangoConnector] = DjangoConnector
    # What the rest of the package may ask this vendor's server (backends/server.py).
    dataflow_server: ServerQueries = ServerQueries()
    # Connection parameters left out of the pool key: objects without a value equality
    # that are derived from what the key holds anyway (vendors name them).
    dataflow_params_not_in_key: frozenset[str] = frozenset()

    def __init__(self, settings_dict: dict[str, Any], alias: str = DEFAULT_DB_ALIAS) -> None:
        super().__init__(settings_dict, alias)
        # Validated again (and raised) at the first connect, as Django does for a missing
        # NAME: Django builds wrappers while importing models, and raising here would
        # abort startup before ``manage.py check`` could list every problem.
        try:
            options = latest_options(alias, settings_dict) or resolve_pool_options(
                alias, self.vendor, settings_dict
            )
        except ImproperlyConfigured:
            options = None
        self._dataflow_use_options(options)
        self._dataflow_lease = Lease()
        # True while the leased connection is parked (and self.connection unset).
        self._dataflow_parked = False
        # True while close() runs: only then does _close() give the connection back.
        self._dataflow_closing = False
        # Server-side cursors declared since the connection was last given back (None
        # until the first: vendors that have them fill it), closed before it goes back
        # again; see _dataflow_close_open_cursors.
        self._dataflow_open_cursors: list[weakref.ref[Any]] | None = None
        # True between disable_constraint_checking() and enable_constraint_checking():
        # a connection is never given back with its foreign-key checks off.
        self._dataflow_constraints_off = False
        # The pool of the last checkout and what it was chosen for (see
        # _dataflow_unchanged_pool).
        self._dataflow_last: LastPool | None = None
        finalizer = weakref.finalize(self, return_lease, self._dataflow_lease)
        finalizer.atexit = False

    def get_connection_params(self) -> dict[str, Any]:  # pool options in OPTIONS: I001
        return without_pool_options(super().get_connection_params())

    # -- which connections are pooled ------------------------------------------------

    def dataflow_uses_pool(self) -> bool:
        """Django's maintenance connections (``__no_db__``) are never pooled; vendors
        may refuse more (SQLite in-memory databases)."""
        return self.alias != NO_DB_ALIAS

    # -- checkout ------------------------------------------------------------------------

    def connect(self) -> None:
        # Not decorated with @async_unsafe like Django's: ensure_connection(), the way in,
        # already checks, and the check costs as much as a quarter of a checkout.
        if self._dataflow_lease.record is not None:
            # Parked, and self.connection overwritten meanwhile; or a lease left behind
            # (an exception interrupted a connect or a close, connect() called while
            # connected): give it back, never strand it under a new checkout's lease.
            self._dataflow_release()
        self._dataflow_epoch = parking.epoch.value  # read before the settings
        pool = self._dataflow_unchanged_pool()
        if pool is None:
            # First connection, or something that shapes the connection changed.
            if not self.dataflow_uses_pool():
                return super().connect()
            self.check_settings()
            if self._dataflow_last is not None:
                # The entry changed: other threads' wrappers share it, and their parked
                # connections must be looked at again (the settings epoch, backends/parking.py).
                parking.bump_settings_epoch()
                self._dataflow_epoch = parking.epoch.value
            pool = self._dataflow_pool_for(self.get_connection_params())
        # Django's BaseDatabaseWrapper.connect(), with the per-physical-connection setup
        # run only when the pooled connection is new.
        self.in_atomic_block = False
        self.savepoint_ids: list[str] = []
        self.atomic_blocks: list[Any] = []
        self.needs_rollback = False
        self.health_check_enabled = self.settings_dict["CONN_HEALTH_CHECKS"]
        max_age = self.settings_dict["CONN_MAX_AGE"]
        self.close_at = None if max_age is None else time.monotonic() + max_age
        self.closed_in_transaction = False
        self.errors_occurred = False
        self.health_check_done = True
        self._dataflow_constraints_off = False
        self.connection = self._dataflow_checkout(pool)
        record = self._dataflow_lease.record
        # The set-up's and the hooks' queries must not give the connection back
        # (transaction scope, backends/scope.py).
        self._dataflow_pins += 1
        try:
            self._dataflow_set_up(record)
        finally:
            self._dataflow_pins -= 1
        self.run_on_commit: list[Any] = []

    def _dataflow_set_up(self, record: Any) -> None:
        try:
            if not record.setup_done or self.connector_class.setup_due(self.connection):
                self.set_autocommit(self.settings_dict["AUTOCOMMIT"])
                self.init_connection_state()
                connection_created.send(sender=self.__class__, connection=self)
                if pool_connect.receivers:
                    events.send(self, pool_connect, record)
                record.setup_done = True
            else:
                self._dataflow_restore_autocommit()
                if connection_created.receivers:
                    # At every checkout, as Django's own pool does: receivers keep
                    # per-connection state current (contrib.postgres's type OIDs).
                    connection_created.send(sender=self.__class__, connection=self)
            self._dataflow_created_for = record
        except BaseException:
            # A connection whose setup failed is closed, never lent again.
            self._dataflow_release(discard_reason="setup_failed")
            self.connection = None
            raise
        self._dataflow_lease.hooked = bool(pool_checkout.receivers or pool_checkin.receivers)
        if pool_checkout.receivers:
            try:
                events.send(self, pool_checkout, record, connection_proxy=self)
            except BaseException:
                # Back to the pool (the reset there discards it if it is unusable).
                self._dataflow_release()
                self.connection = None
                raise

    def _dataflow_taken_back(self, record: Any) -> Any:
        # Taking a parked connection back is a checkout too: connection_created reaches
        # it as it reaches a checkout through connect() (docs/design.md).
        # With transaction scope, that is every query: the signal reaches a connection
        # once a request (_dataflow_created_for, reset at the request's start and end).
        if self._dataflow_created_for is not record:
            self._dataflow_pins += 1
            try:
                connection_created.send(sender=self.__class__, connection=self)
                self._dataflow_created_for = record
            except BaseException:
                self._dataflow_release(discard_reason="setup_failed")
                self.connection = None
                raise
            finally:
                self._dataflow_pins -= 1
        return self.connection

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        # Only ever called directly: our connect() checks out without it.
        if not self.dataflow_uses_pool():
            return super().get_new_connection(conn_params)
        if self._dataflow_lease.record is not None:
            # The wrapper holds a connection (maybe parked) and keeps it: the caller
            # asked for another one, which it owns and closes, as with Django's backend.
            # A pooled one would be lent to nobody the pool could take it back from.
            return super().get_new_connection(conn_params)
        return self._dataflow_checkout(self._dataflow_pool_for(conn_params))

    def _dataflow_checkout(self, pool: ConnectionPool) -> Any:
        lease = self._dataflow_lease
        retries = 0
        record = None
        started = time.perf_counter() if tracing.active else 0.0  # (the Debug Toolbar)
        try:
            while True:
                try:
                    record = pool.checkout()
                    # The lease at once, the record last: an asynchronous exception
                    # (KeyboardInterrupt, a gevent Timeout) between the lend and the
                    # lease would strand the connection; the except below returns it.
                    lease.pool = pool
                    lease.token = record.lease
                    lease.record = record
                    break
                except PoolTimeoutError as error:
                    # The engine's cause (the last connect error) stays the cause.
                    timeout = PoolTimeout(str(error), **error.snapshot())
                    if not hooks.has_error_handlers():
                        raise timeout from error.__cause__
                    delay = hooks.retry_delay_after_timeout(
                        self.alias, timeout, retries, pool.get_stats()
                    )
                    if delay is None:
                        raise timeout from error.__cause__
                    retries += 1
                    message = "Retrying a checkout of %r in %.2fs."
                    logger.info(message, self.alias, delay, extra=error.log_extra())
                    time.sleep(delay)
                except PoolClosedError as error:
                    raise PoolClosed(str(error)) from None
        except BaseException:
            if record is not None and lease.record is not record:
                pool.checkin(record, record.lease, in_hand=True)
            raise
        if self._thread_sharing_count:  # (allow_thread_sharing, without its lock)
            record.holder = None  # shared on purpose: never reclaimed as abandoned
        elif isinstance(record.holder, greenlets.DummyThread):
            greenlets.adopt(record)  # a gevent greenlet (backends/greenlets.py)
        self.dataflow_after_checkout(record.connection)
        if started:
            how = tracing.REUSED if record.setup_done else tracing.NEW
            tracing.checked_out(self, record, how, time.perf_counter() - started)
        return record.connection

    def dataflow_after_checkout(self, connection: Any) -> None:
        """Vendor hook: copy onto this wrapper what Django's stock connect would have set
        while opening ``connection`` (which another wrapper may have opened)."""

    def _dataflow_restore_autocommit(self) -> None:
        # Django's set_autocommit() does several checks and a driver call; a pooled
        # connection almost always comes back in the right mode already.
        wanted = self.settings_dict["AUTOCOMMIT"]
        if self.connector_class.driver_autocommit(self.connection) == wanted:
            self.autocommit = wanted
        else:
            self.set_autocommit(wanted)

    def _dataflow_new_pool(self) -> ConnectionPool:
        install_process_hooks()
        options = self.dataflow_options
        assert options is not None  # resolved by _dataflow_pool_for, the caller
        return ConnectionPool(
            self.connector_class(
                self._dataflow_template(), self.dataflow_server.identify_connection, options
            ),
            name=self.alias,
            events=events.SignalEvents(self.__class__, self.alias),
            target=str(self.settings_dict["NAME"]),
            vendor=self.vendor,
            overflow_delay=TRANSACTION_OVERFLOW_DELAY if self._dataflow_transaction_scope else 0.0,
            **pool_arguments(options),
        )

    # -- checkin -------------------------------------------------------------------------

    def close(self) -> None:
        if self._dataflow_parked:
            # Give a parked connection back as it is, without taking it out first.
            self.validate_thread_sharing()
            self._dataflow_release()
            self.connection = None
        elif self._dataflow_lease.record is not None and self.connection is None:
            # A lease without its connection (an exception interrupted a connect or a
            # close): Django's close() would do nothing, and strand it.
            self._dataflow_release()
        self._dataflow_closing = True
        try:
            super().close()
        finally:
            self._dataflow_closing = False

    def _close(self) -> None:
        if self._dataflow_parked and not self._dataflow_closing:
            # Called directly while the connection is parked (between transactions with
            # pool_scope="transaction"): the connection meant is the parked one. Taken
            # back, it is closed below; taken by another thread, there is none to close.
            self._dataflow_unpark()
        if self._dataflow_lease.record is None:
            return super()._close()
        if not self._dataflow_closing:
            # Called directly, not by close(): Django's contract is "close the
            # underlying connection" while the wrapper keeps referring to it, so it
            # is really closed, never handed to another borrower.
            reason = "closed_directly"
        elif self.in_atomic_block:
            # Closed inside an atomic block, Django keeps the connection object until
            # the block exits: likewise really closed.
            reason = "closed_in_transaction"
        else:
            reason = None
            if self._dataflow_live_cursors is not None:
                self._dataflow_close_live_cursors()
            if self._dataflow_open_cursors is not None:
                self._dataflow_close_open_cursors()
            if self._dataflow_constraints_off:
                reason = self._dataflow_enable_constraints()
        # No error translation needed: checkin swallows driver errors (a connection that
        # cannot be reset or closed cleanly is simply thrown away).
        self._dataflow_release(discard_reason=reason)

    def _dataflow_release(self, discard_reason: str | None = None) -> None:
        lease = self._dataflow_lease
        pool, record, token, hooked = lease.pool, lease.record, lease.token, lease.hooked
        # The lease is cleared only once the connection is back: an exception that
        # interrupts the return leaves it held, to be given back by the next close()
        # or connect(). Given back twice, a lease is stale the second time, and ignored.
        if pool is not None and pool.pid == registry.process.pid:
            # (Else inherited from the parent process: neither ours to return nor close.)
            if self._dataflow_parked:
                # Another thread may have taken it meanwhile: claimed first, and given
                # back quietly (a parked connection's checkout sent no signal: hooks
                # prevent parking), never signalled or reset while someone else holds it.
                pool.give_back_parked(record, token)
            else:
                if discard_reason is None and hooked and pool_checkin.receivers:
                    try:
                        events.send(self, pool_checkin, record)
                    except Exception:
                        logger.exception(
                            "A pool_checkin receiver for %r failed; the connection is discarded.",
                            self.alias,
                        )
                        discard_reason = "hook_failed"
                pool.checkin(record, token, discard_reason=discard_reason, in_hand=True)
        self._dataflow_parked = False
        self._dataflow_live_cursors = None
        lease.clear()
        if tracing.active:
            tracing.checked_in(self, "returned")

    # -- errors --------------------------------------------------------------------------

    def is_usable(self) -> bool:
        # Django closes a connection that fails this check (health checks, and after an
        # error at the end of a request); with a pool, closing must mean discarding.
        usable = super().is_usable()
        if not usable and self._dataflow_lease.record is not None:
            self._dataflow_lease.record.invalidate("unusable")
        return usable

    @cached_property
    def wrap_database_errors(self) -> DatabaseErrorWrapper:
        return _PoolAwareErrorWrapper(self)

    def _dataflow_note_error(self, error: BaseException) -> None:
        lease = self._dataflow_lease
        pool, record = lease.pool, lease.record
        if record is None or pool is None:
            return
        connector = cast(DjangoConnector, pool.connector)
        if connector.is_disconnect(error, record.connection):
            message = "A connection of %r was lost (%s); discarding it."
            logger.info(message, self.alias, error, extra=log_extra(pool))
            record.invalidate("disconnect")
            pool.invalidate_older_connections()

    # -- threads ---------------------------------------------------------------------------

    def inc_thread_sharing(self) -> None:
        super().inc_thread_sharing()
        if self._dataflow_parked:
            self._dataflow_unpark()  # shared from now on: never parked again meanwhile
        record = self._dataflow_lease.record
        if record is not None:
            record.holder = None  # shared on purpose: never reclaimed as abandoned

    @property
    def dataflow_pool(self) -> ConnectionPool | None:
        """The pool this wrapper checked out from last (None before its first checkout)."""
        return self._dataflow_last.pool if self._dataflow_last is not None else None

    @property
    def dataflow_record(self) -> Any:
        """The pool's record of the connection this wrapper holds, or None (also while
        it is parked: another thread may take it)."""
        return None if self._dataflow_parked else self._dataflow_lease.record
