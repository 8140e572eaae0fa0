"""The errors django-dataflow raises to Django code.

They subclass Django's ``OperationalError``, so code that already handles database
errors (``except django.db.OperationalError``) handles pool exhaustion too.
"""

from __future__ import annotations

from django.db.utils import DatabaseError, OperationalError


class PoolTimeout(OperationalError):
    """No pooled connection became free within ``pool_timeout`` seconds."""


class PoolClosed(OperationalError):
    """The pool was closed while a connection was requested."""


class HookError(DatabaseError):
    """A lifecycle hook (a pool_connect or pool_checkout receiver) raised a non-database
    error; the original is its ``__cause__``."""
