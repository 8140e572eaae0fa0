"""Lifecycle corners of the glue, each on real threads and a real database."""

from __future__ import annotations

import gc

import pytest
from django.db import DatabaseError
from django.test import override_settings

from django_dataflow.pool import registry
from tests.backends.helpers import (
    AT_REST,
    Stepper,
    at_rest,
    backend_pid,
    make_wrapper,
    pid_reported_by_a_forked_child,
    request,
    session_alive,
)

pytestmark = pytest.mark.django_db(transaction=True)

OPTIONS = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 3}


def test_close_pools_while_another_thread_has_a_parked_connection():
    thread = Stepper()
    try:
        wrapper = thread.call(lambda: make_wrapper(**OPTIONS))
        thread.call(lambda: request(wrapper))  # parked for that thread
        old_pool = wrapper.dataflow_pool
        registry.close_pools()
        assert old_pool.closed
        assert thread.call(lambda: request(wrapper)) == (1,)
        new_pool = wrapper.dataflow_pool
        assert new_pool is not old_pool
        thread.call(wrapper.close)
        assert at_rest(old_pool) == AT_REST
        assert old_pool.get_stats()["total"] == 0
        assert at_rest(new_pool) == AT_REST
    finally:
        thread.stop()


def test_close_pools_while_another_thread_holds_a_connection():
    thread = Stepper()
    try:
        wrapper = thread.call(lambda: make_wrapper(**OPTIONS))
        pid = thread.call(lambda: backend_pid(wrapper))  # checked out, held
        old_pool = wrapper.dataflow_pool
        registry.close_pools()
        # The holder goes on with its request on the connection it holds.
        assert thread.call(lambda: backend_pid(wrapper)) == pid
        thread.call(wrapper.close_if_unusable_or_obsolete)  # its request ends
        assert old_pool.get_stats()["total"] == 0
        assert at_rest(old_pool) == AT_REST
        assert thread.call(lambda: request(wrapper)) == (1,)
        thread.call(wrapper.close)
        assert at_rest(wrapper.dataflow_pool) == AT_REST
    finally:
        thread.stop()


def test_a_wrapper_collected_while_parked_and_its_connection_taken_by_another_thread():
    holder_thread = Stepper()
    other_thread = Stepper()
    try:
        box = {}

        def park():
            box["wrapper"] = make_wrapper(**OPTIONS)
            request(box["wrapper"])
            return box["wrapper"].dataflow_pool

        pool = holder_thread.call(park)
        other = other_thread.call(lambda: make_wrapper(**OPTIONS))
        # The other thread takes the parked connection (at the pool's limit) and opens a
        # transaction on it.
        other_thread.call(lambda: other.set_autocommit(False))
        pid = other_thread.call(lambda: backend_pid(other))
        # Now the holder's wrapper is collected: its finalizer queues the old lease.
        del box["wrapper"]
        gc.collect()
        registry.run_housekeeping()
        # The other thread's transaction is untouched and its connection still its own.
        assert other_thread.call(lambda: backend_pid(other)) == pid
        assert other_thread.call(
            lambda: (
                other.connection.info.transaction_status.name
                if other.vendor == "postgresql"
                else "skip"
            )
        ) in ("INTRANS", "skip")
        other_thread.call(other.commit)
        other_thread.call(lambda: other.set_autocommit(True))
        other_thread.call(other.close)
        registry.run_housekeeping()
        assert at_rest(pool) == AT_REST
        assert pool.get_stats()["total"] == 1
    finally:
        holder_thread.stop()
        other_thread.stop()


def test_a_wrapper_collected_while_parked_is_returned_once():
    thread = Stepper()
    try:
        box = {}

        def park():
            box["wrapper"] = make_wrapper(**OPTIONS)
            request(box["wrapper"])
            return box["wrapper"].dataflow_pool

        pool = thread.call(park)
        del box["wrapper"]
        gc.collect()
        registry.run_housekeeping()
        registry.run_housekeeping()
        assert at_rest(pool) == AT_REST
        survivor = make_wrapper(**OPTIONS)
        request(survivor)
        survivor.close()
        assert at_rest(pool) == AT_REST
        assert pool.get_stats()["connections_created"] == 1
    finally:
        thread.stop()


def test_autocommit_left_off_at_request_end_is_not_seen_by_the_next_request():
    wrapper = make_wrapper(**OPTIONS)
    wrapper.close_if_unusable_or_obsolete()
    wrapper.set_autocommit(False)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
    wrapper.close_if_unusable_or_obsolete()  # request_finished
    pool = wrapper.dataflow_pool
    assert at_rest(pool) == AT_REST
    other = make_wrapper(**OPTIONS)
    other.ensure_connection()
    assert other.get_autocommit() is True
    other.close_if_unusable_or_obsolete()
    other.close()
    wrapper.close()
    assert at_rest(pool) == AT_REST


def test_an_error_at_request_end_checks_in_and_next_request_works():
    wrapper = make_wrapper(**OPTIONS)
    wrapper.close_if_unusable_or_obsolete()
    with pytest.raises(DatabaseError), wrapper.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_in_these_tests")
    wrapper.close_if_unusable_or_obsolete()
    pool = wrapper.dataflow_pool
    assert at_rest(pool) == AT_REST
    assert request(wrapper) == (1,)
    wrapper.close()
    assert at_rest(pool) == AT_REST


def test_inc_thread_sharing_while_parked_and_taken():
    holder = make_wrapper(**OPTIONS)
    request(holder)  # parked
    thread = Stepper()
    try:
        other = thread.call(lambda: make_wrapper(**OPTIONS))
        pid = thread.call(lambda: backend_pid(other))  # takes the parked one
        holder.inc_thread_sharing()
        assert holder.connection is None
        # The shared wrapper, used from another thread, gets a connection of its own
        # (it must wait: the only one is held), so release the other first.
        thread.call(other.close)
        shared_thread = Stepper()
        try:
            got = shared_thread.call(lambda: backend_pid(holder))
            assert got == pid
            shared_thread.call(holder.close)
        finally:
            shared_thread.stop()
        holder.dec_thread_sharing()
        assert at_rest(holder.dataflow_pool) == AT_REST
    finally:
        thread.stop()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_while_another_thread_has_a_parked_connection(vendor):
    thread = Stepper()
    try:
        wrapper = thread.call(lambda: make_wrapper(**OPTIONS))
        pid = thread.call(lambda: backend_pid(wrapper))
        thread.call(wrapper.close_if_unusable_or_obsolete)  # parked in that thread

        def in_the_child():
            child_wrapper = make_wrapper(**OPTIONS)
            child_pid = backend_pid(child_wrapper)
            child_wrapper.close()
            return child_pid

        reported = pid_reported_by_a_forked_child(in_the_child)
        if vendor != "sqlite":
            assert int(reported) != pid
            assert session_alive(pid, vendor)
        assert thread.call(lambda: backend_pid(wrapper)) == pid
        thread.call(wrapper.close)
        assert at_rest(wrapper.dataflow_pool) == AT_REST
    finally:
        thread.stop()


def test_time_zone_override_while_another_thread_has_a_parked_connection(vendor):
    if vendor != "postgresql":
        pytest.skip("session time zone: PostgreSQL")
    thread = Stepper()
    try:
        wrapper = thread.call(lambda: make_wrapper(pool_size=2, pool_max_overflow=0))
        thread.call(lambda: request(wrapper))  # parked, UTC
        utc_pool = wrapper.dataflow_pool
        main = make_wrapper(pool_size=2, pool_max_overflow=0)
        with override_settings(USE_TZ=False, TIME_ZONE="Asia/Tokyo"):
            main.close()
            # main's wrapper: Django resets only the current thread's connections
            main.__dict__.pop("timezone", None)
            main.__dict__.pop("timezone_name", None)
            assert request(main, "SHOW TIME ZONE") == ("Asia/Tokyo",)
            tokyo_pool = main.dataflow_pool
            # the other thread's wrapper reads its own zone (cached), as stock Django
            zone = thread.call(lambda: request(wrapper, "SHOW TIME ZONE"))
            assert zone == (wrapper.timezone_name,)
        main.close()
        thread.call(wrapper.close)
        assert tokyo_pool is not utc_pool
        assert at_rest(utc_pool) == AT_REST
        assert at_rest(tokyo_pool) == AT_REST
    finally:
        thread.stop()


@pytest.mark.parametrize("parked", [True, False])
def test_close_from_another_thread_is_refused_and_changes_nothing(parked):
    from django.db import DatabaseError

    wrapper = make_wrapper(**OPTIONS)
    pid = backend_pid(wrapper)
    if parked:
        wrapper.close_if_unusable_or_obsolete()
    thread = Stepper()
    try:
        with pytest.raises(DatabaseError):
            thread.call(wrapper.close)
    finally:
        thread.stop()
    assert backend_pid(wrapper) == pid
    wrapper.close()
    assert at_rest(wrapper.dataflow_pool) == AT_REST
