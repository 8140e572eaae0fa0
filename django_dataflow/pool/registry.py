"""The process-wide table of pools, its housekeeper thread, and fork safety.

A pool belongs to one process and one set of connection parameters, so pools are keyed
by ``(alias, fingerprint of the effective parameters, pid)``. Changing NAME (test
databases, ``override_settings``) reaches a different pool, and a forked child never
sees its parent's pools: at fork the child drops them *without closing* their
connections (closing would end the parent's sessions) and keeps the objects alive so
no finalizer touches them later.

A pool whose last wrapper left it for another (its settings entry changed) is retired:
closed, so its idle sessions end at once (the old database can be dropped), and
forgotten. A bound on the pools of one alias keeps per-tenant switching from
growing without limit.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from django_dataflow.pool.pool import ConnectionPool

logger = logging.getLogger("django_dataflow.pool")

PoolKey = tuple[str, Hashable, int]


class _Process:
    """This process's id, kept current across fork: reading an attribute is cheaper
    than a getpid() system call on every checkout and checkin."""

    pid = os.getpid()


process = _Process()

_lock = threading.Lock()
_install_lock = threading.Lock()
_pools: dict[PoolKey, ConnectionPool] = {}
# Connections inherited from the parent process: held forever, never used or closed.
_inherited_connections: list[Any] = []


# Live pools one alias may have (per-tenant settings switching makes one per tenant);
# past it, making a pool retires the least recently chosen ones. Raise it for more
# tenants than this served at once (docs/backends.md).
MAX_POOLS_PER_ALIAS = 16

# The users of each pool (the wrappers whose last checkout was from it), and when each
# pool was last chosen: for retiring pools nobody uses and for the bound above.
_users: dict[PoolKey, weakref.WeakSet[Any]] = {}
_chosen: dict[PoolKey, int] = {}
_choices = itertools.count()


def get_or_create_pool(
    alias: str,
    fingerprint: Hashable,
    factory: Callable[[], ConnectionPool],
    user: Any = None,
    previous: ConnectionPool | None = None,
) -> ConnectionPool:
    """Return the open pool for ``alias`` and these parameters in this process, creating
    it with ``factory()`` the first time.

    ``user`` (a wrapper) becomes one of the pool's users, and leaves ``previous``, the
    pool it used before: a pool whose last live user left it for another is retired
    (its idle connections closed now, the others as they come back). Users that are
    gone (their threads ended) neither keep a pool nor retire it: a server that runs
    each request in a new thread leaves its pools without users between requests.
    """
    key = (alias, fingerprint, process.pid)
    pool = _pools.get(key)
    if pool is not None and not pool.closed and (user is None or previous is pool):
        return pool
    retired: list[ConnectionPool] = []
    with _lock:
        pool = _pools.get(key)
        if pool is None or pool.closed:
            install_process_hooks()
            pool = factory()
            _pools[key] = pool
            _housekeeper.watch(pool)
            logger.debug("Created a connection pool for %r.", alias)
            retired += _retire_beyond_bound(alias, key)
        if user is not None:
            _users.setdefault(key, weakref.WeakSet()).add(user)
            _chosen[key] = next(_choices)
            if previous is not None and previous is not pool:
                retired += _leave(previous, user)
    for old in retired:
        old.close()
    return pool


def _key_of(pool: ConnectionPool) -> PoolKey | None:
    # Under the lock.
    return next((key for key, item in _pools.items() if item is pool), None)


def _leave(pool: ConnectionPool, user: Any) -> list[ConnectionPool]:
    """Under the lock: ``user`` no longer uses ``pool``; the pool, if it was its last."""
    key = _key_of(pool)
    if key is None:
        return []
    users = _users.get(key)
    if users is not None:
        users.discard(user)
        if not users:
            return [_forget(key)]
    return []


def _forget(key: PoolKey) -> ConnectionPool:
    # Under the lock: the pool leaves the registry (the caller closes it, outside).
    _users.pop(key, None)
    _chosen.pop(key, None)
    return _pools.pop(key)


def _retire_beyond_bound(alias: str, new: PoolKey) -> list[ConnectionPool]:
    """Under the lock: the least recently chosen pools of ``alias`` beyond
    ``MAX_POOLS_PER_ALIAS`` (counting the new one ``new``)."""
    pid = process.pid
    others = [key for key in _pools if key[0] == alias and key[2] == pid and key != new]
    excess = len(others) + 1 - max(1, MAX_POOLS_PER_ALIAS)
    if excess <= 0:
        return []
    others.sort(key=lambda key: _chosen.get(key, -1))
    logger.info(
        "Database %r has more than %d connection pools (its settings entry changes: "
        "a pool per tenant?); closing the %d least recently used. Raise "
        "django_dataflow.pool.registry.MAX_POOLS_PER_ALIAS to keep more.",
        alias,
        MAX_POOLS_PER_ALIAS,
        excess,
    )
    return [_forget(key) for key in others[:excess]]


def all_pools(alias: str | None = None) -> list[ConnectionPool]:
    """Open pools of this process, optionally only those of one alias."""
    pid = process.pid
    with _lock:
        return [
            pool
            for (pool_alias, _fp, pool_pid), pool in _pools.items()
            if pool_pid == pid and not pool.closed and (alias is None or pool_alias == alias)
        ]


def close_pools(predicate: Callable[[PoolKey, ConnectionPool], bool] | None = None) -> int:
    """Close (and forget) the pools of this process for which ``predicate(key, pool)``
    is true, or all of them. Returns how many were closed."""
    pid = process.pid
    with _lock:
        chosen = [
            (key, pool)
            for key, pool in _pools.items()
            if key[2] == pid and (predicate is None or predicate(key, pool))
        ]
        for key, _pool in chosen:
            _forget(key)
    for _key, pool in chosen:
        pool.close()
    return len(chosen)


def _close_pools_at_exit() -> None:
    """``atexit``: close this process's connections, so that the server sees each
    session end (libpq's Terminate, MySQL's COM_QUIT) as it does when Django's own
    connections are finalized, instead of a dropped socket: MariaDB would log "Aborted
    connection" and count ``Aborted_clients`` for every recycled worker, PostgreSQL
    "unexpected EOF on client connection". Registered by ``install_process_hooks()``."""
    pid = process.pid
    if pid != os.getpid():
        return
    with _lock:
        keys = [key for key in _pools if key[2] == pid]
        pools = [_pools.pop(key) for key in keys]
    for pool in pools:
        try:
            pool.close_at_exit()
        except Exception:
            logger.debug("Closing pool %r at exit failed.", pool.name, exc_info=True)


def _forget_pools_in_child() -> None:
    """``os.fork()`` hook, run in the child: the parent's pools are not ours."""
    global _lock
    _lock = threading.Lock()
    process.pid = os.getpid()
    for pool in list(_pools.values()):
        _inherited_connections.extend(pool.forget_after_fork())
    _pools.clear()
    _users.clear()
    _chosen.clear()
    _housekeeper.after_fork()


# The housekeeper never runs more often than this, whatever a leak interval says.
MIN_INTERVAL = 0.01


class _Housekeeper:
    """One daemon thread per process that calls ``maintain()`` on every live pool.

    It holds pools through weak references, so a pool nobody uses can be collected.
    """

    interval = 1.0

    def __init__(self) -> None:
        self._pools: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def watch(self, pool: ConnectionPool) -> None:
        self._pools.add(pool)
        if pool.leaks.threshold and pool.leaks.check_interval < self.interval:
            self._wake.set()  # a round now, then waits as short as its leak checks
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="django-dataflow-housekeeper", daemon=True
            )
            self._thread.start()

    def pools(self) -> Iterable[ConnectionPool]:
        return list(self._pools)

    def _next_wait(self) -> float:
        """Seconds until the next round: ``interval``, or sooner for a pool whose leak
        check is due more often (``pool_leak_check_interval`` below one second)."""
        wait = self.interval
        for pool in self.pools():
            if pool.leaks.threshold:
                wait = min(wait, pool.leaks.check_interval)
        return max(wait, MIN_INTERVAL)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._next_wait())
            self._wake.clear()
            for pool in self.pools():
                try:
                    pool.maintain()
                except Exception:
                    logger.exception("Housekeeping of pool %r failed.", pool.name)

    def run_once(self) -> None:
        """Maintain every pool now, in the calling thread (for tests and commands)."""
        for pool in self.pools():
            pool.maintain()

    def after_fork(self) -> None:
        # Threads do not survive fork: a new one starts with the child's first pool.
        self._pools = weakref.WeakSet()
        self._thread = None
        self._wake = threading.Event()


_housekeeper = _Housekeeper()
run_housekeeping = _housekeeper.run_once

_hooks_installed = False


def install_process_hooks() -> None:
    """Close this process's pools at exit, and forget the parent's pools in a forked
    child (idempotent). Called from AppConfig.ready() and when the first pool is made,
    so a project that uses the ENGINEs without installing the app is fork-safe too.

    Installed before anything that reads the pools at exit (the statistics publisher
    registers its own handler later), so it runs after them: ``atexit`` runs the last
    registered first."""
    global _hooks_installed
    with _install_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(_close_pools_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_forget_pools_in_child)
