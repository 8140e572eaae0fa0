"""What the pool needs to know about mysqlclient connections.

mysqlclient does not expose whether a transaction is open. MariaDB Connector/C does
(``mariadb_get_infov(..., MARIADB_CONNECTION_SERVER_STATUS, ...)``, the status flags the
server sends with every reply), so with it reset costs no round trip unless a
transaction is open. Built against another client library, reset rolls back every time.

The status is read from the very library mysqlclient's ``_mysql`` module is linked
against, as mapped into this process (``/proc/self/maps``): a wheel that bundles its own
libmariadb and a system copy of it are two libraries, and a connection handle of one
must never reach the other. Where that library cannot be found (no ``/proc``, MySQL's
libmysqlclient), the reader is off and every return rolls back. The status is read
where the library keeps it, the ``server_status`` field of the connection's ``MYSQL``
struct (``layout.py``: no foreign call at each park), once the struct's layout was
checked against the library's answer for that connection; otherwise through
``mariadb_get_infov()``, loaded with ``ctypes.PyDLL``, which keeps the interpreter lock
for the call: giving the lock up and taking it back among fifty busy threads costs far
more than the call.

With ``pool_reset_on_return``, every return resets the session with the same library's
``mysql_reset_connection`` (``COM_RESET_CONNECTION``), called through ``ctypes.CDLL``,
which gives the interpreter lock up for that round trip. Without the library a full
reset is impossible through mysqlclient, and the connection is closed instead of kept.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable
from typing import Any

import MySQLdb

from django_dataflow.backends.connector import SETUP_DUE, DjangoConnector
from django_dataflow.backends.mysql import layout

logger = logging.getLogger("django_dataflow.pool")

# Server status flags (mysql_com.h).
SERVER_STATUS_IN_TRANS = 0x0001
SERVER_STATUS_AUTOCOMMIT = 0x0002
SERVER_MORE_RESULTS_EXISTS = 0x0008
# enum mariadb_value in MariaDB Connector/C's mysql.h.
MARIADB_CONNECTION_SERVER_STATUS = 30

# Client errors and server errors that mean the session is gone.
DISCONNECT_ERRORS = frozenset(
    {
        1053,  # ER_SERVER_SHUTDOWN
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        2006,  # CR_SERVER_GONE_ERROR
        2013,  # CR_SERVER_LOST
        2055,  # CR_SERVER_LOST_EXTENDED
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
    }
)


def mapped_client_library(maps: str | None = None) -> str | None:
    """The file of the MariaDB client library mapped into this process (the one
    ``_mysql`` was loaded with), or None. ``maps``: the text of ``/proc/self/maps``."""
    if maps is None:
        try:
            with open("/proc/self/maps") as file:
                maps = file.read()
        except OSError:
            return None
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and os.path.basename(fields[5]).startswith("libmariadb"):
            return fields[5].strip()
    return None


def _server_status_reader(
    library_path: str | None = None,
) -> Callable[[Any], int | None] | None:
    """A function returning a connection's server status flags, or None if the client
    library that mysqlclient uses cannot tell."""
    path = library_path or mapped_client_library()
    if path is None:
        return None
    try:
        library = ctypes.PyDLL(path)
        get_info = library.mariadb_get_infov
    except (OSError, AttributeError):
        return None
    # No argtypes: every argument is passed as a ctypes object made once per connection
    # (below), which is half the cost of converting Python values at each call.
    get_info.restype = ctypes.c_char
    capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    capsule_pointer.restype = ctypes.c_void_p
    capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    what = ctypes.c_int(MARIADB_CONNECTION_SERVER_STATUS)

    class StatusThroughLibrary:
        """The status flags through ``mariadb_get_infov()``: for a connection whose
        ``MYSQL`` struct the layout mirror does not match (``layout.py``)."""

        __slots__ = ("buffer", "handle", "pointer")

        def __init__(self, handle: ctypes.c_void_p) -> None:
            self.handle = handle
            # One buffer per connection: one thread at a time uses a connection, and
            # PyDLL keeps the interpreter lock from the call to the read of the buffer.
            self.buffer = ctypes.c_uint()
            self.pointer = ctypes.byref(self.buffer)

        @property
        def value(self) -> int | None:
            if get_info(self.handle, what, self.pointer) != b"\x00":
                return None
            return int(self.buffer.value)

    def status_of(connection: Any) -> Any:
        """Once per connection: what its status flags are read from (``.value``).
        The MYSQL handle lives inside the connection object, so its address never
        changes."""
        native = capsule_pointer(
            connection._get_native_connection(), b"_mysql.connection.native_connection"
        )
        handle = ctypes.c_void_p(native)
        through_library = StatusThroughLibrary(handle)
        library_status = through_library.value
        view = None
        if library_status is not None:
            view = layout.verified_status_view(connection, native, library_status)
            if view is None and not _layout_mismatch_logged:
                _log_layout_mismatch(path)
        connection._dataflow_mysql_handle = handle
        status = connection._dataflow_status = through_library if view is None else view
        return status

    def read(connection: Any) -> int | None:
        if not connection.open:
            return None
        status = getattr(connection, "_dataflow_status", None)
        if status is None:
            status = status_of(connection)
        return status.value

    return read


_layout_mismatch_logged = False


def _log_layout_mismatch(path: str) -> None:
    global _layout_mismatch_logged
    _layout_mismatch_logged = True
    logger.info(
        "The MYSQL struct of %s does not match django_dataflow's mirror of it: the "
        "server status is read through mariadb_get_infov() instead (a little slower).",
        path,
    )


read_server_status = _server_status_reader()


def _session_resetter(library_path: str | None = None) -> Callable[[Any], bool] | None:
    """A function resetting a connection's session as new (``mysql_reset_connection``
    of the library mysqlclient uses) and telling whether it did, or None without it."""
    path = library_path or mapped_client_library()
    if path is None:
        return None
    try:
        # The same library as the status reader's (dlopen hands out the loaded copy),
        # through CDLL: this call is a round trip, the interpreter lock is given up.
        reset_connection = ctypes.CDLL(path).mysql_reset_connection
    except (OSError, AttributeError):
        return None
    reset_connection.restype = ctypes.c_int
    reset_connection.argtypes = [ctypes.c_void_p]

    def reset(connection: Any) -> bool:
        # read_server_status() looked the MYSQL handle up just before.
        handle = getattr(connection, "_dataflow_mysql_handle", None)
        return handle is not None and reset_connection(handle) == 0

    return reset


reset_session = _session_resetter()


class MySQLConnector(DjangoConnector):
    def opened(self, connection: Any, params: dict[str, Any]) -> None:
        # A session reset forgets what OPTIONS["init_command"] set (sql_mode...): kept
        # to run it again. (The character set of the handshake survives a reset.)
        connection._dataflow_init_command = params.get("init_command")

    @staticmethod
    def driver_autocommit(connection: Any) -> bool:
        return connection.get_autocommit()

    def is_closed(self, connection: Any) -> bool:
        return not connection.open

    @staticmethod
    def driver_execute(connection: Any, sql: str, params: Any) -> Any:
        # mysqlclient's connections have no execute(): through a cursor.
        cursor = connection.cursor()
        cursor.execute(sql, params)
        return cursor

    def ping(self, connection: Any) -> bool:
        connection.ping()  # raises if the server is gone
        return True

    def reset(self, connection: Any) -> bool:
        status = read_server_status(connection) if read_server_status else None
        if status is None:
            if self.reset_on_return:
                return False  # no mysql_reset_connection either: closed instead
            connection.rollback()  # cannot tell: always clean up
            return True
        if status & SERVER_MORE_RESULTS_EXISTS:
            return False  # returned mid-query
        if self.reset_on_return:
            return self._reset_session(connection)
        if status & SERVER_STATUS_IN_TRANS:
            connection.rollback()
        return True

    def _reset_session(self, connection: Any) -> bool:
        """The session as new (a transaction open is rolled back, user variables,
        temporary tables, session variables and locks go), then OPTIONS["init_command"]
        again and the autocommit mode Django uses; True if that worked."""
        if reset_session is None or not reset_session(connection):
            # Without mysql_reset_connection (another client library): close it.
            return False
        init_command = getattr(connection, "_dataflow_init_command", None)
        if init_command:
            cursor = connection.cursor()
            try:
                cursor.execute(init_command)
            finally:
                cursor.close()
        # The session's autocommit is now the server's global default, and the client's
        # copy of the status flags the one before the reset: mysqlclient's autocommit()
        # would trust that copy, the driver's call sends SET autocommit.
        MySQLdb._mysql.connection.autocommit(connection, self.template.settings_dict["AUTOCOMMIT"])
        # The rest of Django's setup (isolation level...), and the pool_connect hooks,
        # at the next checkout.
        setattr(connection, SETUP_DUE, True)
        return True

    def is_clean(self, connection: Any) -> bool:
        if read_server_status is None or self.reset_on_return:
            # Cannot tell; or every borrower gets a session reset (never parked).
            return False
        status = read_server_status(connection)
        # Autocommit on too: a raw "SET autocommit = 0" (no transaction open yet) would
        # otherwise be parked, and the thread's next request, which Django believes
        # autocommitted, would write into a transaction its return rolls back. Checked
        # in instead, the next checkout restores the mode. (With AUTOCOMMIT False,
        # nothing is parked.)
        return bool(
            status is not None
            and status & SERVER_STATUS_AUTOCOMMIT
            and not status & (SERVER_STATUS_IN_TRANS | SERVER_MORE_RESULTS_EXISTS)
        )

    def is_disconnect(self, error: BaseException, connection: Any) -> bool:
        cause = error.__cause__ if error.__cause__ is not None else error
        return (
            isinstance(cause, MySQLdb.OperationalError)
            and bool(cause.args)
            and cause.args[0] in DISCONNECT_ERRORS
        )
