"""DjangoConnector: opens physical connections the way Django's own backend does.

The pool engine calls a connector to open, check, reset and close connections. This base
class opens them with the stock backend's ``get_new_connection`` on a private *template*
wrapper (never a thread's own wrapper), so every driver option Django supports keeps
working. Vendor subclasses add the cheap checks: ping, reset, is_disconnect.
"""

from __future__ import annotations

import logging
import os
import select
from typing import Any

logger = logging.getLogger("django_dataflow.pool")


def socket_has_news(raw: Any) -> bool:
    """True when an idle DB-API connection's socket is readable (or gone): the server
    closed it, or sent something unasked. False when it cannot tell (SQLite)."""
    fileno = getattr(raw, "fileno", None)
    if fileno is None:
        return False
    try:
        fd = fileno()
    except Exception:  # the driver says the connection is closed
        return True
    if fd is None or fd < 0:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


class DjangoConnector:
    def __init__(
        self,
        open_physical_connection: Any,
        conn_params: dict[str, Any],
        options: dict[str, Any] | None = None,
    ) -> None:
        # open_physical_connection is the stock backend's bound get_new_connection.
        self._open = open_physical_connection
        self._conn_params = conn_params
        # The entry's effective POOL options (for vendor settings such as the
        # PostgreSQL statement cache).
        self.options = options or {}

    def connect(self) -> Any:
        return self._open(self._conn_params)

    def ping(self, connection: Any) -> bool:
        raise NotImplementedError

    def has_pending_input(self, connection: Any) -> bool:
        """Has the server said something to this idle connection (a zero-timeout poll of
        its socket, about a microsecond)? On an idle connection that is almost always
        its goodbye: the session was killed or timed out."""
        return socket_has_news(connection)

    def is_closed(self, connection: Any) -> bool:
        """Was the connection closed on the client side (no round trip)? Catches a DB-API
        connection closed behind the pool's back."""
        raise NotImplementedError

    def reset(self, connection: Any) -> bool:
        raise NotImplementedError

    def is_clean(self, connection: Any) -> bool:
        """Idle, no transaction open, told without a round trip? False: cannot tell, so
        the connection is checked in (and reset) rather than parked."""
        return False

    @staticmethod
    def driver_autocommit(connection: Any) -> bool:
        """The DB-API connection's own autocommit mode (no round trip)."""
        raise NotImplementedError

    def close(self, connection: Any) -> None:
        connection.close()

    def is_disconnect(self, error: BaseException, connection: Any) -> bool:
        """Did ``error`` (raised while using ``connection``) mean the connection is gone?"""
        return False

    def forget_after_fork(self, connection: Any) -> None:
        """Point the inherited socket at /dev/null in the child, so that whatever the
        driver does with it later (a QUIT or Terminate message when the object is
        finalized) cannot reach the server and end the parent's session."""
        try:
            fd = connection.fileno()
        except Exception:
            return
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
