"""MySQL/MariaDB: the transaction state is read from mysqlclient's own client library.

The pool tells an idle connection from one with a transaction open by reading the
server status flags through MariaDB Connector/C. The handle belongs to the library that
``_mysql`` is linked against, so the reader must use that very library (a wheel may
bundle its own copy beside a system one); where it cannot be found, every return rolls
back instead.
"""

from __future__ import annotations

import ctypes

import pytest
from django.db import connections

from django_dataflow.backends.mysql import connector as mysql_connector
from django_dataflow.backends.mysql import layout

MAPS_WITH_MARIADB = (
    "7f0000000000-7f0000001000 r-xp 00000000 08:01 1234 "
    "/opt/venv/lib/mysqlclient.libs/libmariadb-5f1d2c3a.so.3\n"
    "7f0000002000-7f0000003000 r--p 00000000 08:01 1235 /usr/lib/libc.so.6\n"
)
MAPS_WITH_MYSQL = "7f0000000000-7f0000001000 r-xp 00000000 08:01 1 /usr/lib/libmysqlclient.so.21\n"


def test_the_client_library_is_the_one_mapped_into_the_process():
    path = mysql_connector.mapped_client_library(MAPS_WITH_MARIADB)
    assert path == "/opt/venv/lib/mysqlclient.libs/libmariadb-5f1d2c3a.so.3"


def test_without_mariadb_connector_c_there_is_no_status_reader():
    assert mysql_connector.mapped_client_library(MAPS_WITH_MYSQL) is None
    assert mysql_connector.mapped_client_library("") is None
    assert mysql_connector._server_status_reader("/nonexistent/libmariadb.so.3") is None


@pytest.mark.django_db(transaction=True)
def test_the_reader_sees_a_transaction_on_the_connection_mysqlclient_opened(vendor):
    if vendor != "mysql":
        pytest.skip("MySQL/MariaDB's client library")
    assert mysql_connector.read_server_status is not None, "no libmariadb mapped"
    wrapper = connections["default"]
    wrapper.ensure_connection()
    raw = wrapper.connection
    status = mysql_connector.read_server_status(raw)
    assert status is not None and not status & mysql_connector.SERVER_STATUS_IN_TRANS
    raw.query("BEGIN")
    raw.query("SELECT 1")
    raw.store_result()
    status = mysql_connector.read_server_status(raw)
    assert status & mysql_connector.SERVER_STATUS_IN_TRANS
    raw.rollback()
    wrapper.close()


@pytest.mark.django_db(transaction=True)
def test_without_a_reader_a_returned_connection_is_rolled_back(vendor, monkeypatch):
    if vendor != "mysql":
        pytest.skip("MySQL/MariaDB's client library")
    monkeypatch.setattr(mysql_connector, "read_server_status", None)
    wrapper = connections["default"]
    with wrapper.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS dataflow_reader_probe (id INT)")
    raw_connector = mysql_connector.MySQLConnector(None, {})
    wrapper.ensure_connection()
    raw = wrapper.connection
    raw.query("BEGIN")
    raw.query("INSERT INTO dataflow_reader_probe VALUES (1)")
    assert raw_connector.is_clean(raw) is False  # cannot tell: never parked
    assert raw_connector.reset(raw) is True  # rolled back
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM dataflow_reader_probe")
        assert cursor.fetchone()[0] == 0
        cursor.execute("DROP TABLE dataflow_reader_probe")
    wrapper.close()


def _library_status(raw):
    """The status flags as Connector/C's mariadb_get_infov() reports them."""
    library = ctypes.PyDLL(mysql_connector.mapped_client_library())
    status = ctypes.c_uint()
    what = ctypes.c_int(mysql_connector.MARIADB_CONNECTION_SERVER_STATUS)
    assert library.mariadb_get_infov(raw._dataflow_mysql_handle, what, ctypes.byref(status)) == 0
    return status.value


@pytest.mark.django_db(transaction=True)
def test_the_status_is_read_from_the_mysql_struct_and_agrees_with_the_library(vendor):
    if vendor != "mysql":
        pytest.skip("MySQL/MariaDB's client library")
    wrapper = connections["default"]
    wrapper.ensure_connection()
    raw = wrapper.connection
    read = mysql_connector.read_server_status
    read(raw)
    # The layout mirror matched this library: no foreign call per read.
    assert isinstance(raw._dataflow_status, ctypes.c_uint)
    seen = set()

    def agree():
        status = read(raw)
        assert status == _library_status(raw)
        seen.add(status)
        return status

    assert not agree() & mysql_connector.SERVER_STATUS_IN_TRANS
    raw.query("BEGIN")
    assert agree() & mysql_connector.SERVER_STATUS_IN_TRANS
    raw.rollback()
    raw.autocommit(False)
    assert not agree() & mysql_connector.SERVER_STATUS_AUTOCOMMIT
    raw.autocommit(True)
    assert agree() & mysql_connector.SERVER_STATUS_AUTOCOMMIT
    assert len(seen) >= 3  # the view followed the changes, not one lucky value
    wrapper.close()


def test_a_struct_the_mirror_does_not_match_is_not_read():
    # Memory that is not a MYSQL struct of this connection: every field zero.
    class Fake:
        def thread_id(self):
            return 42

        def get_proto_info(self):
            return 10

    zeros = ctypes.create_string_buffer(4096)
    address = ctypes.addressof(zeros)
    assert layout.verified_status_view(Fake(), address, 2) is None
    # Even where the status field happens to hold the library's answer.
    ctypes.c_uint.from_address(address + layout.SERVER_STATUS_OFFSET).value = 2
    assert layout.verified_status_view(Fake(), address, 2) is None


@pytest.mark.django_db(transaction=True)
def test_without_a_matching_layout_the_status_is_read_through_the_library(vendor, monkeypatch):
    if vendor != "mysql":
        pytest.skip("MySQL/MariaDB's client library")
    monkeypatch.setattr(layout, "verified_status_view", lambda *args: None)
    read = mysql_connector._server_status_reader()
    wrapper = connections["default"]
    wrapper.ensure_connection()
    raw = wrapper.connection
    for name in ("_dataflow_status", "_dataflow_mysql_handle"):
        raw.__dict__.pop(name, None)
    assert not read(raw) & mysql_connector.SERVER_STATUS_IN_TRANS
    assert not isinstance(raw._dataflow_status, ctypes.c_uint)
    raw.query("BEGIN")
    assert read(raw) & mysql_connector.SERVER_STATUS_IN_TRANS
    raw.rollback()
    assert not read(raw) & mysql_connector.SERVER_STATUS_IN_TRANS
    for name in ("_dataflow_status", "_dataflow_mysql_handle"):
        raw.__dict__.pop(name, None)  # (the module's own reader makes its own again)
    wrapper.close()
