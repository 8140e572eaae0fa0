"""A pool belongs to one process, one set of parameters, and its borrowers' threads."""

from __future__ import annotations

import datetime
import gc
import threading

import pytest
from django.db import connection, connections
from django.db.backends.postgresql import base as django_postgresql
from django.test import override_settings

from django_dataflow.backends.creation import close_pools_on_database
from django_dataflow.pool import registry
from tests.backends.helpers import (
    admin_cursor,
    backend_pid,
    make_wrapper,
    pid_reported_by_a_forked_child,
    session_alive,
)

pytestmark = pytest.mark.django_db(transaction=True)


def current_database(wrapper):
    if wrapper.vendor == "sqlite":
        with wrapper.cursor() as cursor:
            cursor.execute("PRAGMA database_list")
            return next(row[2] for row in cursor.fetchall() if row[1] == "main")
    sql = "SELECT current_database()" if wrapper.vendor == "postgresql" else "SELECT DATABASE()"
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


@pytest.fixture
def second_database(vendor, tmp_path):
    if vendor == "sqlite":
        yield str(tmp_path / "second.sqlite3")
        return
    name = "dataflow_second"
    with admin_cursor(vendor) as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    yield name
    close_pools_on_database(name)
    with admin_cursor(vendor) as cursor:
        # Fails on PostgreSQL if a pooled connection were still open on it.
        cursor.execute(f"DROP DATABASE {name}")


def test_a_changed_name_reaches_a_new_pool(second_database):
    wrapper = make_wrapper()
    first_name = current_database(wrapper)
    first_pool = wrapper.dataflow_pool
    wrapper.close()
    wrapper.settings_dict["NAME"] = second_database
    assert current_database(wrapper) == second_database
    assert wrapper.dataflow_pool is not first_pool
    wrapper.close()
    assert first_name != second_database


def test_a_query_before_test_database_creation_does_not_pin_the_old_database(
    second_database,
):
    # What Django's native pool gets wrong: the pool was made for the configured NAME
    # before the test runner switched NAME; later checkouts must follow the new NAME.
    wrapper = make_wrapper()
    wrapper.settings_dict["NAME"] = second_database
    current_database(wrapper)
    wrapper.close()
    wrapper.settings_dict["NAME"] = connections["default"].settings_dict["NAME"]
    expected = connections["default"].settings_dict["NAME"]
    assert current_database(wrapper) == expected
    assert "test_" in expected
    wrapper.close()


def test_pools_on_a_database_are_closed_before_it_is_dropped(second_database):
    wrapper = make_wrapper()
    wrapper.settings_dict["NAME"] = second_database
    current_database(wrapper)
    wrapper.close()
    assert close_pools_on_database(second_database) == 1
    assert not [p for p in registry.all_pools() if p.target == second_database]


# Python 3.12+ warns about fork() in a process with threads (the pool's housekeeper,
# pytest's): forking such a process, as a pre-forking server does, is the point here.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("state", ["checked_out", "parked"])
def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(vendor, state):
    parent_pid = backend_pid(connection)  # checked out while forking
    parent_raw = connection.connection
    if state == "parked":
        connection.close_if_unusable_or_obsolete()  # a request ended: parked, not held

    def in_the_child():
        assert connection.connection is None, "the child must not inherit the lease"
        return backend_pid(connections["default"])

    def drop_the_inherited_connections():
        nonlocal parent_raw
        del parent_raw
        registry._inherited_connections.clear()

    reported = pid_reported_by_a_forked_child(in_the_child, drop_the_inherited_connections)
    if vendor != "sqlite":
        assert int(reported) != parent_pid
        assert session_alive(parent_pid, vendor)
    assert connection.connection is parent_raw
    assert backend_pid(connection) == parent_pid  # the parent's connection still works
    connection.close()


def test_a_thread_that_ends_without_closing_gives_its_connection_back():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 3}
    keep_alive = []  # the wrapper is not garbage-collected: only thread death counts

    def leak():
        wrapper = make_wrapper(**options)
        keep_alive.append((wrapper, backend_pid(wrapper)))

    thread = threading.Thread(target=leak)
    thread.start()
    thread.join()
    survivor = make_wrapper(**options)
    assert backend_pid(survivor) == keep_alive[0][1]  # reclaimed, not a new connection
    assert survivor.dataflow_pool.get_stats()["reclaimed_from_dead_threads"] == 1
    survivor.close()


def test_a_garbage_collected_wrapper_gives_its_connection_back():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 3}
    lost = make_wrapper(**options)
    lost.ensure_connection()
    pool = lost.dataflow_pool
    del lost
    gc.collect()
    survivor = make_wrapper(**options)
    survivor.ensure_connection()
    assert pool.get_stats()["connections_created"] == 1
    survivor.close()


def test_sqlite_in_memory_databases_keep_djangos_single_connection(vendor):
    if vendor != "sqlite":
        pytest.skip("SQLite only")
    wrapper = make_wrapper()
    wrapper.settings_dict["NAME"] = ":memory:"
    assert not wrapper.dataflow_uses_pool()
    with wrapper.cursor() as cursor:
        cursor.execute("CREATE TABLE kept (x)")
    wrapper.close()  # Django ignores close() on an in-memory database
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM kept")
        assert cursor.fetchone() == (0,)
    assert wrapper._dataflow_last is None


def test_djangos_own_postgresql_pool_names_are_not_shadowed():
    from django_dataflow.backends.base import PooledDatabaseWrapperMixin
    from django_dataflow.backends.postgresql.base import DatabaseWrapper

    for name in ("pool", "_connection_pools", "close_pool"):
        assert name not in vars(PooledDatabaseWrapperMixin)
        assert name not in vars(DatabaseWrapper)
        assert getattr(DatabaseWrapper, name) is getattr(django_postgresql.DatabaseWrapper, name)


def in_another_thread(function):
    """Run ``function`` as a request on another thread would, and return its result."""
    results, errors = [], []

    def run():
        try:
            results.append(function())
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]
    return results[0]


def session_time_zone_and_a_timestamp():
    with connection.cursor() as cursor:
        cursor.execute("SHOW TIME ZONE")
        zone = cursor.fetchone()[0]
        cursor.execute("SELECT '2020-01-01 00:00:00+00'::timestamptz")
        return zone, cursor.fetchone()[0]


@pytest.mark.parametrize("request_end", ["close", "close_if_unusable_or_obsolete"])
def test_a_time_zone_changed_by_override_settings_never_reaches_the_old_zones_pool(
    vendor, request_end
):
    """override_settings(TIME_ZONE) makes Django SET the session time zone of the
    connection held at that moment, a connection of the old zone's pool. Lent again from
    there, it would shift every timestamp the next borrower reads."""
    if vendor != "postgresql":
        pytest.skip("only PostgreSQL sets a session time zone (ensure_timezone)")
    connection.ensure_connection()  # a request in progress, on the UTC pool
    with override_settings(USE_TZ=False, TIME_ZONE="Asia/Tokyo"):
        getattr(connection, request_end)()  # the request ends inside the override
        connection.close()  # (parked by close_if_unusable_or_obsolete: give it back)
    zone, value = in_another_thread(session_time_zone_and_a_timestamp)
    assert zone == "UTC"
    assert value == datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_a_clone_of_a_sqlite_file_test_database_has_what_was_migrated(vendor, tmp_path, journal):
    """The parallel test runner clones a file test database by copying the file. In WAL
    mode (DataFlowConfig's default) what migrate wrote may still be in the -wal file, so
    the clone must be made after a checkpoint. create_test_db ends holding a connection,
    as here."""
    import sqlite3

    if vendor != "sqlite":
        pytest.skip("SQLite file databases are cloned by copying")
    name = str(tmp_path / "test_db.sqlite3")
    base = connections["default"]
    settings_dict = {**base.settings_dict, "NAME": name, "TEST": {}}
    settings_dict["OPTIONS"] = {"init_command": f"PRAGMA journal_mode={journal};"}
    wrapper = base.__class__(settings_dict, "default")
    with wrapper.cursor() as cursor:  # "migrate"
        cursor.execute("CREATE TABLE migrated (x integer)")
        cursor.execute("INSERT INTO migrated VALUES (1)")
    wrapper.ensure_connection()
    try:
        wrapper.creation._clone_test_db("1", verbosity=0)
        clone = sqlite3.connect(wrapper.creation.get_test_db_clone_settings("1")["NAME"])
        try:
            assert clone.execute("SELECT x FROM migrated").fetchall() == [(1,)]
        finally:
            clone.close()
    finally:
        wrapper.close()
        close_pools_on_database(name)
