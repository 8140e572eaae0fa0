"""Signals sent over a pooled connection's life, the Django way to hook into the pool.

Every signal is sent with ``sender`` = the backend's DatabaseWrapper class and these
keyword arguments:

``alias``
    The DATABASES alias of the pool.
``vendor``
    ``"postgresql"``, ``"mysql"`` or ``"sqlite"`` (Django's ``connection.vendor``).
``connection``
    The DB-API connection, wrapped so that ``connection.execute(sql)`` works on every
    driver (see ``django_dataflow.hooks.HookConnection``). Not sent with ``pool_timeout``.
``connection_record``
    The pool's ``ConnectionRecord``: ``.info`` (a dict that lives as long as the physical
    connection), ``.created``, ``.age``, ``.last_checkout_at``, ``.thread``. Not sent
    with ``pool_timeout``.

Specific arguments:

``pool_connect``      a new physical connection, after Django's own setup, before first use.
``pool_checkout``     a connection lent to a Django connection; also ``connection_proxy``
                      (the DatabaseWrapper).
``pool_checkin``      a connection coming back, before it is reset.
``pool_invalidate``   a connection thrown away; also ``reason`` (``"recycle"``,
                      ``"pre_ping"``, ``"disconnect"``, ``"reset_failed"``, ``"leak"``,
                      ``"manual"``, …).
``pool_timeout``      no connection became free in time; also ``waited`` (seconds),
                      ``message`` and ``stats``.
``pool_leak``         a connection checked out longer than ``pool_leak_threshold``; also
                      ``checked_out_for`` (seconds) and ``stack`` (where it was checked out).
"""

from __future__ import annotations

from django.dispatch import Signal

pool_connect = Signal()
pool_checkout = Signal()
pool_checkin = Signal()
pool_invalidate = Signal()
pool_timeout = Signal()
pool_leak = Signal()

__all__ = [
    "pool_checkin",
    "pool_checkout",
    "pool_connect",
    "pool_invalidate",
    "pool_leak",
    "pool_timeout",
]
