"""Thread affinity through Django: a request parks its connection at the end, the
thread's next request takes it back, and any other thread may take it meanwhile."""

from __future__ import annotations

import threading
import time

import pytest

from django_dataflow import PoolTimeout
from django_dataflow.pool import registry
from tests.backends.helpers import (
    admin_cursor,
    backend_pid,
    kill_session,
    make_wrapper,
    request,
    session_alive,
)

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(func):
    result = []
    thread = threading.Thread(target=lambda: result.append(func()))
    thread.start()
    thread.join(30)
    return result[0]


def test_the_next_request_of_a_thread_takes_back_its_parked_connection():
    wrapper = make_wrapper(pool_size=2, pool_max_overflow=0)
    first = backend_pid(wrapper)
    wrapper.close_if_unusable_or_obsolete()
    assert wrapper.dataflow_record is None  # parked: not held
    before = wrapper.dataflow_pool.get_stats()
    assert (before["checked_out"], before["idle_connections"]) == (0, 1)

    assert backend_pid(wrapper) == first
    wrapper.close_if_unusable_or_obsolete()
    after = wrapper.dataflow_pool.get_stats()
    assert after["thread_reuses"] == before["thread_reuses"] + 1
    assert after["checkouts"] == before["checkouts"] + 1
    assert after["checkins"] == before["checkins"] + 1
    assert after["connections_created"] == before["connections_created"] == 1
    wrapper.close()


def test_another_thread_takes_a_parked_connection_and_the_holder_cannot_use_it():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 0.3}
    holder = make_wrapper(**options)
    parked_pid = backend_pid(holder)
    holder.close_if_unusable_or_obsolete()

    # Another thread's request takes the parked connection (the pool's only one)
    # instead of waiting for it, and keeps it until told to finish.
    taken, finish = [], threading.Event()

    def other_request():
        other = make_wrapper(**options)  # wrappers belong to their thread
        taken.append(backend_pid(other))
        finish.wait(10)
        other.close()

    thread = threading.Thread(target=other_request)
    thread.start()
    deadline = time.monotonic() + 10
    while not taken and time.monotonic() < deadline:
        time.sleep(0.01)
    assert taken == [parked_pid]
    with pytest.raises(PoolTimeout):
        holder.ensure_connection()  # its parked connection is gone: it must wait
    assert holder.connection is None

    finish.set()
    thread.join(10)
    assert backend_pid(holder) == parked_pid  # given back, lent again
    holder.close()
    stats = holder.dataflow_pool.get_stats()
    assert stats["checkouts"] == stats["checkins"]
    assert stats["connections_created"] == 1


def test_a_transaction_left_open_is_rolled_back_not_parked(vendor):
    from tests.testapp.models import Counter

    Counter.objects.create(name="kept", value=1)
    table = Counter._meta.db_table
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.close_if_unusable_or_obsolete()
    wrapper.ensure_connection()
    cursor = wrapper.connection.cursor()  # raw SQL behind Django's back, in autocommit
    cursor.execute("START TRANSACTION" if vendor == "mysql" else "BEGIN")
    cursor.execute(f"UPDATE {table} SET value = 99")
    cursor.close()
    reuses = wrapper.dataflow_pool.get_stats()["thread_reuses"]
    wrapper.close_if_unusable_or_obsolete()  # request_finished

    assert request(wrapper, f"SELECT value FROM {table}") == (1,)
    assert wrapper.dataflow_pool.get_stats()["thread_reuses"] == reuses
    wrapper.close()


def test_a_parked_connection_killed_on_the_server_is_replaced_without_an_error(vendor):
    if vendor == "sqlite":
        pytest.skip("SQLite has no server sessions to kill")
    # A long bypass window: only the socket poll can notice the kill.
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_pre_ping_bypass=60.0)
    first = backend_pid(wrapper)
    wrapper.close_if_unusable_or_obsolete()
    kill_session(first, vendor)
    deadline = time.monotonic() + 10
    while session_alive(first, vendor):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    second = backend_pid(wrapper)  # no error reaches the request
    assert second != first
    assert wrapper.dataflow_pool.get_stats()["pre_ping_failures"] == 1
    wrapper.close()


def test_close_gives_a_parked_connection_back_without_taking_it_out():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    request(wrapper)
    wrapper.close()
    assert wrapper.connection is None
    stats = wrapper.dataflow_pool.get_stats()
    assert stats["checkouts"] == stats["checkins"] == 1
    assert stats["thread_reuses"] == 0
    assert (stats["checked_out"], stats["idle_connections"]) == (0, 1)


def test_a_parked_connection_outlives_its_thread_as_an_idle_one():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 1}

    def request_then_end():
        ended = make_wrapper(**options)
        pid = backend_pid(ended)
        ended.close_if_unusable_or_obsolete()  # parked; the thread ends without close()
        return pid, ended.dataflow_pool

    pid, pool = in_thread(request_then_end)
    pool.maintain()
    stats = pool.get_stats()
    assert stats["reclaimed_from_dead_threads"] == 0  # returned properly, not abandoned
    assert (stats["checked_out"], stats["idle_connections"]) == (0, 1)
    other = make_wrapper(**options)
    assert backend_pid(other) == pid
    other.close()


def test_a_connection_left_out_of_autocommit_is_checked_in_not_parked():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    wrapper.set_autocommit(False)  # a request that turned autocommit off and kept it
    wrapper.close_if_unusable_or_obsolete()
    # Django's path: the connection is closed (checked in), not parked.
    assert wrapper.connection is None
    stats = wrapper.dataflow_pool.get_stats()
    assert stats["checked_out"] == 0 and stats["checkins"] == 1
    request(wrapper)  # the next request gets it back in autocommit mode
    assert wrapper.get_autocommit()
    wrapper.close()


def test_with_thread_affinity_off_every_request_checks_in():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_thread_affinity=False)
    for _ in range(3):
        request(wrapper)
        assert wrapper.connection is None  # Django's CONN_MAX_AGE = 0 semantics
    stats = wrapper.dataflow_pool.get_stats()
    assert stats["thread_reuses"] == 0
    assert stats["checkouts"] == stats["checkins"] == 3


def test_closing_the_pool_closes_a_parked_connection(vendor):
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    first = backend_pid(wrapper)
    wrapper.close_if_unusable_or_obsolete()
    old_pool = wrapper.dataflow_pool
    old_pool.close()  # what happens before a test database is dropped
    assert old_pool.get_stats()["total"] == 0
    if vendor != "sqlite":
        deadline = time.monotonic() + 10
        while session_alive(first, vendor):
            assert time.monotonic() < deadline, "the parked connection stayed open"
            time.sleep(0.05)
    request(wrapper)  # a new pool, a new connection
    assert wrapper.dataflow_pool is not old_pool
    wrapper.close()


def test_requests_each_in_a_thread_of_their_own_reuse_one_connection():
    """Django under ASGI runs each request's sync code in a thread of its own, which ends
    with the request: the connection parked at its end goes to the next request instead
    of the pool opening another one for every request up to its limit."""
    from django.core.signals import request_finished, request_started
    from django.db import connections

    def one_request():
        request_started.send(sender=None)
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            request_finished.send(sender=None)

    in_thread(one_request)
    (pool,) = registry.all_pools("default")
    opened = pool.get_stats()["connections_created"]
    for _ in range(10):  # strictly one after another
        in_thread(one_request)
    stats = pool.get_stats()
    assert stats["connections_created"] == opened, stats
    assert stats["total"] < stats["max_connections"]


def test_autocommit_turned_off_by_raw_sql_does_not_reach_the_threads_next_request(vendor):
    """Request 1 turns autocommit off behind Django's back (raw SQL, a library), with no
    transaction open yet. Parked as it is, request 2 of the same thread would write into
    a transaction Django does not know of, which its return rolls back: lost silently."""
    if vendor != "mysql":
        pytest.skip("autocommit is a server session setting on MySQL/MariaDB only")
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    with wrapper.cursor() as cursor:  # request 1
        cursor.execute("SET autocommit = 0")
    wrapper.close_if_unusable_or_obsolete()  # request_finished
    wrapper.close_if_unusable_or_obsolete()  # request 2: request_started
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO testapp_item (name, active) VALUES ('request 2', TRUE)")
    wrapper.close_if_unusable_or_obsolete()  # request_finished
    wrapper.close()
    with admin_cursor(vendor) as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {wrapper.settings_dict['NAME']}.testapp_item "
            "WHERE name = 'request 2'"
        )
        assert cursor.fetchone()[0] == 1
