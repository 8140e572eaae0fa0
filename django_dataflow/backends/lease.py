"""What a wrapper holds while it has a pooled connection checked out, and what it
remembers of the pool it used last.

The lease is kept apart from the wrapper so that a finalizer can give the connection
back when a wrapper is garbage-collected holding one (the finalizer must not refer to
the wrapper). ``LastPool`` and ``pool_key`` answer "which pool?": the first cheaply, when
nothing that shapes a connection changed since the last checkout; the second from the
connection parameters and the settings.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

from django_dataflow.pool import ConnectionPool, registry


class Lease:
    """What a wrapper holds while it has a pooled connection checked out."""

    __slots__ = ("hooked", "pool", "record", "token")

    def __init__(self) -> None:
        self.pool: ConnectionPool | None = None
        self.record: Any = None
        self.token = 0
        # Checkout and checkin hooks were connected at the checkout: the checkin signal
        # is sent only then, so that receivers see pairs (one connected mid-request
        # gets no checkin for a checkout it never saw).
        self.hooked = False

    def clear(self) -> None:
        self.pool = None
        self.record = None
        self.token = 0
        self.hooked = False


def return_lease(lease: Lease) -> None:
    # weakref.finalize callback: the wrapper was garbage-collected while holding a
    # connection. Runs inside the garbage collector, so it must not take the pool's lock.
    if lease.record is not None and lease.pool is not None and lease.pool.pid == os.getpid():
        lease.pool.return_later(lease.record, lease.token)
    lease.clear()


def freeze(value: Any) -> Any:
    """A hashable, order-independent form of (nested) connection parameters."""
    if isinstance(value, dict):
        return tuple(sorted((str(key), freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(item) for item in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


class PoolKey:
    """A frozen pool key that remembers its hash: a tuple recomputes the hash of every
    nested tuple at each dictionary lookup, and every new wrapper (every request's
    thread under ASGI) looks its pool up in the registry by this key."""

    __slots__ = ("_hash", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._hash = hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, PoolKey) and self._hash == other._hash and self.value == other.value
        )


def pool_key(
    wrapper: Any, conn_params: dict[str, Any], credentials: frozenset[str] = frozenset()
) -> PoolKey:
    """The registry's key for the pool ``wrapper`` needs for ``conn_params``: everything
    that shapes its connections, except the parameters the vendor leaves out and the
    ``credentials`` (a rotating token would make a pool per token)."""
    not_in_key = wrapper.dataflow_params_not_in_key | credentials
    return PoolKey(
        freeze(
            (
                {k: v for k, v in conn_params.items() if k not in not_in_key},
                wrapper.dataflow_options,
                wrapper.settings_dict["OPTIONS"],
                wrapper.timezone_name,
                settings.USE_TZ,
            )
        )
    )


class LastPool:
    """The pool a wrapper used last, the state it was chosen for, and what was worked
    out on the way (the registry's key, the effective POOL options). Never changed once
    made: wrappers with equal entries share one (backends/pools.py, ``latest_pools``)."""

    __slots__ = ("key", "options", "pid", "pool", "settings", "timezone_name", "use_tz")

    def __init__(self, wrapper: Any, pool: ConnectionPool, key: Any) -> None:
        self.pool = pool
        self.key = key
        self.options = wrapper.dataflow_options
        self.pid = registry.process.pid
        # One level deep is enough: Django's entries nest plain dicts (OPTIONS, TEST).
        self.settings = {
            key: dict(value) if isinstance(value, dict) else value
            for key, value in wrapper.settings_dict.items()
        }
        self.use_tz = settings.USE_TZ
        self.timezone_name = wrapper.timezone_name
