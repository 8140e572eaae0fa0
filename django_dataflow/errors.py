"""The errors django-dataflow raises to Django code.

They subclass Django's ``OperationalError``, so code that already handles database
errors (``except django.db.OperationalError``) handles pool exhaustion too.
"""

from __future__ import annotations

from typing import Any

from django.db.utils import DatabaseError, OperationalError


class PoolTimeout(OperationalError):
    """No pooled connection became free within ``pool_timeout`` seconds.

    The pool at the timeout, as attributes (None when not known): ``alias``,
    ``vendor``, ``pool_size``, ``max_overflow``, ``checked_out`` (connections lent out,
    parked ones not counted), ``waiting`` (other requests queued), ``waited`` (seconds)
    and ``last_connect_error`` (the last failed connect's error while it waited, also
    the ``__cause__``).
    """

    alias: str | None = None
    vendor: str | None = None
    pool_size: int | None = None
    max_overflow: int | None = None
    checked_out: int | None = None
    waiting: int | None = None
    waited: float | None = None
    last_connect_error: BaseException | None = None

    def __init__(self, *args: Any, **snapshot: Any) -> None:
        super().__init__(*args)
        for name, value in snapshot.items():
            if name not in PoolTimeout.__annotations__:
                raise TypeError(f"PoolTimeout() got an unexpected keyword argument {name!r}")
            setattr(self, name, value)


class PoolClosed(OperationalError):
    """The pool was closed while a connection was requested."""


class HookError(DatabaseError):
    """A lifecycle hook (a pool_connect or pool_checkout receiver) raised a non-database
    error; the original is its ``__cause__``."""
