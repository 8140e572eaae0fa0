"""Where MariaDB Connector/C keeps a connection's server status flags.

Why it exists: a park asks whether a transaction is open on the connection, once per
request. Connector/C answers through ``mariadb_get_infov()``, a foreign call through
ctypes that costs about 0.3 µs in a tight loop and several times that among fifty busy
threads with cold caches. The function only copies the ``server_status`` field of the
connection's ``MYSQL`` struct; reading that field where it lies costs a plain attribute
read (``ctypes.c_uint.from_address``).

The ``MYSQL`` struct is part of the library's ABI (``libmariadb.so.3``): programs embed it
by value and pass its address to ``mysql_init()``, mysqlclient among them (its connection
object holds a ``MYSQL``, and its ``get_autocommit()`` reads ``server_status`` from it
directly), so its fields up to ``server_status`` cannot move within that major version.
This module mirrors them from ``mysql.h`` and ``mariadb_com.h``. The mirror is not
trusted blindly: ``verified_status_view()`` compares three of its fields with what the
library and mysqlclient report for the same connection, and the caller falls back to the
foreign call for a connection whose fields do not match.
"""

from __future__ import annotations

import ctypes
from typing import Any

MYSQL_ERRMSG_SIZE = 512  # mariadb_com.h
SQLSTATE_LENGTH = 5  # mariadb_com.h
my_bool = ctypes.c_char  # mysql.h: typedef char my_bool
my_socket = ctypes.c_int  # mysql.h, outside Windows


class _Net(ctypes.Structure):
    """``NET`` (``struct st_net``, mariadb_com.h): the struct's first member."""

    _fields_ = [
        ("pvio", ctypes.c_void_p),
        ("buff", ctypes.c_void_p),
        ("buff_end", ctypes.c_void_p),
        ("write_pos", ctypes.c_void_p),
        ("read_pos", ctypes.c_void_p),
        ("fd", my_socket),
        ("remain_in_buf", ctypes.c_ulong),
        ("length", ctypes.c_ulong),
        ("buf_length", ctypes.c_ulong),
        ("where_b", ctypes.c_ulong),
        ("max_packet", ctypes.c_ulong),
        ("max_packet_size", ctypes.c_ulong),
        ("pkt_nr", ctypes.c_uint),
        ("compress_pkt_nr", ctypes.c_uint),
        ("write_timeout", ctypes.c_uint),
        ("read_timeout", ctypes.c_uint),
        ("retry_count", ctypes.c_uint),
        ("fcntl", ctypes.c_int),
        ("return_status", ctypes.c_void_p),
        ("reading_or_writing", ctypes.c_ubyte),
        ("save_char", ctypes.c_char),
        ("unused_1", ctypes.c_char),
        ("unused_2", my_bool),
        ("compress", my_bool),
        ("unused_3", my_bool),
        ("unused_4", ctypes.c_void_p),
        ("last_errno", ctypes.c_uint),
        ("error", ctypes.c_ubyte),
        ("unused_5", my_bool),
        ("unused_6", my_bool),
        ("last_error", ctypes.c_char * MYSQL_ERRMSG_SIZE),
        ("sqlstate", ctypes.c_char * (SQLSTATE_LENGTH + 1)),
        ("extension", ctypes.c_void_p),
    ]


class _MemRoot(ctypes.Structure):
    """``MA_MEM_ROOT`` (mysql.h)."""

    _fields_ = [
        ("free", ctypes.c_void_p),
        ("used", ctypes.c_void_p),
        ("pre_alloc", ctypes.c_void_p),
        ("min_malloc", ctypes.c_size_t),
        ("block_size", ctypes.c_size_t),
        ("block_num", ctypes.c_uint),
        ("first_block_usage", ctypes.c_uint),
        ("error_handler", ctypes.c_void_p),
    ]


class MysqlHead(ctypes.Structure):
    """The head of ``MYSQL`` (``struct st_mysql``, mysql.h), up to ``server_status``."""

    _fields_ = [
        ("net", _Net),
        ("unused_0", ctypes.c_void_p),
        ("host", ctypes.c_void_p),
        ("user", ctypes.c_void_p),
        ("passwd", ctypes.c_void_p),
        ("unix_socket", ctypes.c_void_p),
        ("server_version", ctypes.c_void_p),
        ("host_info", ctypes.c_void_p),
        ("info", ctypes.c_void_p),
        ("db", ctypes.c_void_p),
        ("charset", ctypes.c_void_p),
        ("fields", ctypes.c_void_p),
        ("field_alloc", _MemRoot),
        ("affected_rows", ctypes.c_ulonglong),
        ("insert_id", ctypes.c_ulonglong),
        ("extra_info", ctypes.c_ulonglong),
        ("thread_id", ctypes.c_ulong),
        ("packet_length", ctypes.c_ulong),
        ("port", ctypes.c_uint),
        ("client_flag", ctypes.c_ulong),
        ("server_capabilities", ctypes.c_ulong),
        ("protocol_version", ctypes.c_uint),
        ("field_count", ctypes.c_uint),
        ("server_status", ctypes.c_uint),
    ]


SERVER_STATUS_OFFSET: int = MysqlHead.server_status.offset


def verified_status_view(connection: Any, native: int, library_status: int) -> Any:
    """A ``ctypes.c_uint`` over the ``server_status`` field of mysqlclient
    ``connection``'s ``MYSQL`` struct at address ``native``, or None when the mirror
    does not match that struct.

    Checked against the same connection: the field must hold ``library_status`` (what
    ``mariadb_get_infov()`` just read), and two fields before it must hold what
    mysqlclient reports through the library (the server's thread id, unique to the
    session, and the protocol version). The view reads the connection's memory: it must
    not outlive ``connection`` (the caller keeps it on the connection object).
    """
    head = MysqlHead.from_address(native)
    try:
        matches = (
            head.server_status == library_status
            and head.thread_id == connection.thread_id()
            and head.protocol_version == connection.get_proto_info()
        )
    except Exception:  # closed meanwhile: cannot tell
        return None
    if not matches:
        return None
    return ctypes.c_uint.from_address(native + SERVER_STATUS_OFFSET)
