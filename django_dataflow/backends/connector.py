"""DjangoConnector: opens physical connections the way Django's own backend does.

The pool engine calls a connector to open, check, reset and close connections. This base
class opens them with the stock backend's ``get_new_connection`` on a private *template*
wrapper (never a thread's own wrapper), with parameters built for each connect, so every
driver option Django supports keeps working, and rotating credentials too. Vendor
subclasses add the cheap checks: ping, reset, is_disconnect, and how a hook's
``connection.execute(sql)`` runs on their driver.
"""

from __future__ import annotations

import logging
import os
import re
import select
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("django_dataflow.pool")

# The guide's hooks set application_name on every vendor; only PostgreSQL has it.
# Elsewhere the statement is kept in the connection record's info instead of failing.
SET_APPLICATION_NAME = re.compile(
    r"^\s*SET\s+application_name\s*(?:=|TO)\s*'(?P<name>[^']*)'\s*;?\s*$", re.IGNORECASE
)

# The mark a full reset (POOL["pool_reset_on_return"]) leaves on a DB-API connection:
# the session is as new, so Django's per-connection setup is due again (setup_due).
SETUP_DUE = "_dataflow_setup_due"


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
    # Does the server know application_name (see SET_APPLICATION_NAME)?
    has_application_name = False

    def __init__(
        self,
        template: Any,
        identify: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        # The private wrapper that opens the physical connections (its settings entry,
        # replaced when the entry's credentials change: PoolChoiceMixin._dataflow_pool_for).
        self.template = template
        # Adds what identifies a pooled connection to the server (application_name).
        self._identify = identify
        # The entry's effective POOL options (for vendor settings such as the
        # PostgreSQL statement cache).
        self.options = options or {}
        # Reset the whole session on every return (the vendors that can).
        self.reset_on_return = bool(self.options.get("pool_reset_on_return"))

    def connect(self) -> Any:
        # The parameters are built afresh for every physical connection: a backend
        # whose get_connection_params() returns a fresh token (rotating credentials)
        # connects with the newest one, and the pid in application_name is current.
        template = self.template
        params = template.get_connection_params()
        if self._identify is not None:
            params = self._identify(template.alias, params)
        connection = template.dataflow_open_physical(params)
        self.opened(connection, params)
        return connection

    def opened(self, connection: Any, params: dict[str, Any]) -> None:
        """Keep, on a new connection, what a full reset must put back (the vendors)."""

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
    def setup_due(connection: Any) -> bool:
        """Was the session reset fully on its last return (``pool_reset_on_return``)?
        Then its next checkout runs Django's per-connection setup and the
        ``pool_connect`` hooks again, as for a new connection. Reading clears the mark."""
        if getattr(connection, SETUP_DUE, False):
            setattr(connection, SETUP_DUE, False)
            return True
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

    @classmethod
    def hook_execute(cls, connection: Any, record: Any, sql: str, params: Any = None) -> Any:
        """Run one statement of a lifecycle hook (``HookConnection.execute``); return
        the driver's cursor, or None for a statement kept in ``record.info``."""
        if not cls.has_application_name:
            match = SET_APPLICATION_NAME.match(sql)
            if match:
                record.info["application_name"] = match.group("name")
                return None
        return cls.driver_execute(connection, sql, params)

    @staticmethod
    def driver_execute(connection: Any, sql: str, params: Any) -> Any:
        """``connection.execute``, on drivers whose connections have it."""
        if params is None:
            return connection.execute(sql)
        return connection.execute(sql, params)

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
