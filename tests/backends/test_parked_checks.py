"""A parked connection passes the checks of any checkout before its thread takes it
back: the settings entry changed in place (tenant switching), the driver's autocommit
turned off behind Django's back, a SQLite cursor that outlived its request."""

from __future__ import annotations

import sqlite3

import pytest

from tests.backends.helpers import (
    current_database,
    extra_database,
    make_wrapper,
    request,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_tenant_switch_in_place_reaches_the_new_database_with_a_parked_connection(
    vendor, tmp_path
):
    """A middleware sets ``connection.settings_dict["NAME"]`` per request (works with
    stock Django and CONN_MAX_AGE = 0). The connection parked by the previous request is
    on the previous tenant's database: taken back, the request would read and write
    another tenant's data."""
    wrapper = make_wrapper(pool_size=2, pool_max_overflow=0, pool_pre_ping=False)
    first = wrapper.settings_dict["NAME"]
    with extra_database(vendor, "dataflow_tenant_b", tmp_path) as tenant_b:
        if vendor == "sqlite":
            first = current_database(wrapper)
        else:
            assert current_database(wrapper) == first
        wrapper.close_if_unusable_or_obsolete()  # request_finished: parked
        for tenant in (tenant_b, first, tenant_b):
            wrapper.close_if_unusable_or_obsolete()  # request_started
            wrapper.settings_dict["NAME"] = tenant  # the tenant middleware
            assert current_database(wrapper) == tenant
            wrapper.close_if_unusable_or_obsolete()  # request_finished
        wrapper.close()
        wrapper.dataflow_pool.close()


def test_driver_autocommit_turned_off_is_not_parked_for_the_next_request(vendor, tmp_path):
    """``connection.connection.autocommit = False`` in one request (a library, raw driver
    code): parked as it is, the next request's INSERT runs in a transaction Django does
    not know of, which the return at its end rolls back. (MySQL: see
    test_thread_affinity.py, raw SQL.)"""
    if vendor == "mysql":
        pytest.skip("mysqlclient's autocommit is a server setting: test_thread_affinity.py")
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.close_if_unusable_or_obsolete()  # request 1
    wrapper.ensure_connection()
    if vendor == "postgresql":
        wrapper.connection.autocommit = False
    else:
        wrapper.connection.isolation_level = ""  # sqlite3's implicit transactions
    wrapper.close_if_unusable_or_obsolete()
    for name in ("request 2", "request 3"):
        wrapper.close_if_unusable_or_obsolete()
        with wrapper.cursor() as cursor:
            cursor.execute(f"INSERT INTO testapp_item (name, active) VALUES ('{name}', TRUE)")
        wrapper.close_if_unusable_or_obsolete()
    wrapper.close()
    wrapper.dataflow_pool.close()  # every connection's work is over
    other = make_wrapper(pool_size=1, pool_max_overflow=1)
    assert request(
        other, "SELECT count(*) FROM testapp_item WHERE name IN ('request 2', 'request 3')"
    ) == (2,)
    other.close()


@pytest.mark.parametrize("scope", ["request", "transaction"])
def test_a_sqlite_cursor_outliving_its_request_does_not_hold_a_read_snapshot(
    vendor, tmp_path, scope
):
    """A cursor kept after its request (a cache, a reference cycle) with rows left
    unread holds its statement open, and in WAL mode its read snapshot with it: every
    request that borrows the connection after it reads the database as it was. (With
    the transaction scope the open cursor keeps the connection until the request
    ends, which closes it.)"""
    if vendor != "sqlite":
        pytest.skip("SQLite's WAL read snapshots")
    name = str(tmp_path / "snapshot.sqlite3")
    setup = sqlite3.connect(name, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE item (id INTEGER PRIMARY KEY)")
    setup.executemany("INSERT INTO item VALUES (?)", [(n,) for n in range(100)])

    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_scope=scope)
    wrapper.settings_dict["NAME"] = name
    kept = []
    wrapper.close_if_unusable_or_obsolete()  # request 1
    cursor = wrapper.cursor()
    cursor.execute("SELECT id FROM item")
    cursor.fetchone()
    kept.append(cursor)  # outlives the request, rows unread
    wrapper.close_if_unusable_or_obsolete()

    setup.execute("INSERT INTO item VALUES (100)")  # committed: 101 rows
    for _ in range(2):  # the next request of the thread, and another after a checkin
        assert request(wrapper, "SELECT count(*) FROM item") == (101,)
        wrapper.close()
    setup.close()
    wrapper.dataflow_pool.close()
