"""Which pool a wrapper checks out from, and what a pool opens its connections with.

``_dataflow_unchanged_pool`` answers cheaply when nothing that shapes a connection
changed since the wrapper's last checkout (every request in production);
``_dataflow_pool_for`` finds or makes the pool for the current settings. The pool key is
everything that shapes a connection *except the credentials*: a backend that rotates its
password or token (``get_connection_params()`` returning a fresh IAM token) keeps one
pool, and each physical connect builds the parameters afresh, so it always uses the
newest credentials.

The registry counts the wrappers that use each pool (``registry.get_or_create_pool``'s
``user``): a pool left by its last wrapper (the settings entry changed, the thread
ended) closes its idle connections and is dropped (see ``pool/registry.py``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from django.conf import settings

from django_dataflow.backends import parking
from django_dataflow.backends.lease import LastPool, pool_key
from django_dataflow.backends.scope import TRANSACTION
from django_dataflow.pool import ConnectionPool, registry
from django_dataflow.settings.validation import resolve_pool_options

if TYPE_CHECKING:
    # For the type checker, the mixins sit on the Django wrapper they are mixed in front
    # of (Django ships no types: its names are Any to mypy).
    from django.db.backends.base.base import BaseDatabaseWrapper as WrapperBase
else:
    WrapperBase = object


# The latest pool chosen for each alias by any wrapper of this process, with what it was
# chosen for. A new wrapper (a new thread: ASGI runs each request's sync code in a thread
# of its own) whose entry is equal takes that pool without working out the options and
# the pool key again (about 40 µs a wrapper).
latest_pools: dict[str, LastPool] = {}


def latest_options(alias: str, settings_dict: dict[str, Any]) -> dict[str, Any] | None:
    """The effective POOL options of the latest pool chosen for ``alias``, if it was
    chosen for an entry equal to ``settings_dict`` (they are the same)."""
    latest = latest_pools.get(alias)
    if latest is not None and latest.settings == settings_dict:
        return latest.options
    return None


class PoolChoiceMixin(WrapperBase):
    """Mixed into PooledDatabaseWrapperMixin: the choice of a pool."""

    # Connection parameters that are credentials: left out of the pool key (they may
    # change with every call of get_connection_params) and built afresh for every
    # physical connect instead. Vendors or subclasses may add theirs.
    dataflow_credential_params: frozenset[str] = frozenset({"password", "passwd"})
    # get_connection_params() sets attributes on the wrapper that later code reads
    # (MySQL's isolation_level, SQLite's init_commands): a new wrapper that takes the
    # latest pool without building the parameters calls it all the same. PostgreSQL's
    # sets nothing, and says so: that call is a third of a new wrapper's first checkout.
    dataflow_params_set_attributes = True

    # What the wrapper this is mixed into provides (Django's and PooledDatabaseWrapperMixin's).
    alias: str
    vendor: str
    settings_dict: dict[str, Any]
    timezone_name: str
    dataflow_options: dict[str, Any] | None
    _dataflow_last: LastPool | None

    def _dataflow_new_pool(self) -> ConnectionPool:
        raise NotImplementedError  # PooledDatabaseWrapperMixin's

    def _dataflow_unchanged_pool(self) -> ConnectionPool | None:
        """The pool of the last checkout if nothing that shapes a connection changed
        since: the settings entry, the time zone settings, the process. This is every
        request in production, and it skips rebuilding the connection parameters."""
        last = self._dataflow_last
        if last is None:
            return self._dataflow_latest_pool()
        return last.pool if self._dataflow_fits(last) else None

    def _dataflow_fits(self, last: LastPool) -> bool:
        return (
            last.pid == registry.process.pid
            and not last.pool.closed
            and last.settings == self.settings_dict
            and last.use_tz == settings.USE_TZ
            and last.timezone_name == self.timezone_name
        )

    def _dataflow_latest_pool(self) -> ConnectionPool | None:
        """A new wrapper's first checkout: the pool another wrapper chose last for this
        alias, if its entry was equal (and the time zone and the process the same)."""
        latest = latest_pools.get(self.alias)
        if latest is None or not self._dataflow_fits(latest):
            return None
        if self.dataflow_params_set_attributes:
            # Called for what the backend sets on the wrapper while building them.
            self.get_connection_params()
        pool = registry.get_or_create_pool(
            self.alias, latest.key, self._dataflow_new_pool, user=self
        )
        # (A pool closed meanwhile was made again, for the same key: ours all the same.)
        self._dataflow_last = latest if pool is latest.pool else LastPool(self, pool, latest.key)
        return pool

    def _dataflow_use_options(self, options: dict[str, Any] | None) -> None:
        """The entry's effective POOL options (None: the entry is wrong, and connect()
        raises why), and what the wrapper reads of them on every query."""
        self.dataflow_options = options
        self._dataflow_transaction_scope = (
            options is not None and options["pool_scope"] == TRANSACTION
        )

    def _dataflow_pool_for(self, conn_params: dict[str, Any]) -> ConnectionPool:
        # The options may have changed along with the settings entry.
        self._dataflow_use_options(
            resolve_pool_options(self.alias, self.vendor, self.settings_dict)
        )
        key = pool_key(self, conn_params, self.dataflow_credential_params)
        last = self._dataflow_last
        pool = registry.get_or_create_pool(
            self.alias,
            key,
            self._dataflow_new_pool,
            user=self,
            previous=last.pool if last is not None else None,
        )
        connector: Any = pool.connector  # a DjangoConnector
        if connector.template.settings_dict != self.settings_dict:
            # Same key, other credentials in the entry (PASSWORD changed): the next
            # physical connects use them.
            connector.template = self._dataflow_template()
        self._dataflow_last = latest_pools[self.alias] = LastPool(self, pool, key)
        return pool

    def dataflow_open_physical(self, conn_params: dict[str, Any]) -> Any:
        """Open a physical connection the stock backend's way (run on a template)."""
        return super().get_new_connection(conn_params)

    def _dataflow_template(self) -> Any:
        """A private wrapper that opens the physical connections: the stock backend's
        get_new_connection and get_connection_params set attributes on the wrapper they
        run on (SQLite's init_commands, for one)."""
        return self.__class__(
            {**self.settings_dict, "OPTIONS": dict(self.settings_dict["OPTIONS"])}, self.alias
        )


def _detach_inherited_connections() -> None:
    """``os.fork()`` hook, run in the child: the forking thread's wrappers may hold
    connections of the parent. Forget them without closing; Django opens new ones."""
    try:
        from django.db import connections

        wrappers = connections.all(initialized_only=True)
    except Exception:
        return
    for wrapper in wrappers:
        lease = getattr(wrapper, "_dataflow_lease", None)
        if lease is not None and lease.record is not None:
            lease.clear()
            wrapper._dataflow_parked = False
            wrapper.connection = None
            wrapper._dataflow_last = None


_hooks_installed = False


def install_process_hooks() -> None:
    """Forget the parent's connections in a forked child, and bump the settings epoch
    when a setting changes (idempotent). Called from AppConfig.ready() and when a
    wrapper makes its first pool, so the ENGINEs work without the app installed."""
    global _hooks_installed
    parking.connect_receivers()
    if _hooks_installed:
        return
    _hooks_installed = True
    registry.install_process_hooks()  # the registry's fork hook runs first
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_detach_inherited_connections)
