"""Django's connection lifecycle through the pool, on the server of this run."""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db import OperationalError, connection, connections
from django.db.backends.signals import connection_created

from django_dataflow import PoolTimeout
from tests.backends.helpers import backend_pid, make_wrapper

pytestmark = pytest.mark.django_db(transaction=True)


def wrapper_class():
    return type(connections["default"])


def run_request(query: str = "SELECT 1"):
    request_started.send(sender=None)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchone()
    finally:
        request_finished.send(sender=None)


def test_each_request_returns_its_connection_and_the_next_reuses_it():
    request_started.send(sender=None)
    first = backend_pid()
    request_finished.send(sender=None)
    # Returned: parked for this thread's next request, idle for everybody else.
    assert connection.dataflow_record is None, "request_finished must return the connection"
    assert connection.dataflow_pool.get_stats()["checked_out"] == 0
    before = connection.dataflow_pool.get_stats()
    request_started.send(sender=None)
    second = backend_pid()
    request_finished.send(sender=None)
    assert first == second
    after = connection.dataflow_pool.get_stats()
    assert after["connections_created"] == before["connections_created"]
    assert after["checkouts"] == before["checkouts"] + 1
    assert after["checked_out"] == 0


def test_the_test_database_is_used_not_the_configured_one(vendor):
    if vendor == "sqlite":
        assert "test_tests" in connection.settings_dict["NAME"]
        return
    sql = "SELECT current_database()" if vendor == "postgresql" else "SELECT DATABASE()"
    assert run_request(sql)[0].startswith("test_")


def test_physical_setup_runs_once_and_connection_created_at_every_checkout():
    created = []

    def receiver(sender, connection, **kwargs):
        created.append(connection.connection)

    connection_created.connect(receiver)
    try:
        run_request()
        created_before = connection.dataflow_pool.get_stats()["connections_created"]
        for _ in range(5):
            run_request()
    finally:
        connection_created.disconnect(receiver)
    stats = connection.dataflow_pool.get_stats()
    assert stats["connections_created"] == created_before
    # As Django's own pool sends it (issue 22): also for a connection taken back.
    assert len(created) == 6


def test_a_failing_setup_discards_the_new_connection():
    def explode(sender, connection, **kwargs):
        raise RuntimeError("setup failed")

    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    connection_created.connect(explode)
    try:
        with pytest.raises(RuntimeError):
            wrapper.ensure_connection()
    finally:
        connection_created.disconnect(explode)
    assert wrapper.connection is None
    wrapper.ensure_connection()  # the slot was given back
    stats = wrapper.dataflow_pool.get_stats()
    assert stats["invalidated_by_reason"] == {"setup_failed": 1}
    assert stats["total"] == 1
    wrapper.close()


def test_pool_timeout_is_an_operational_error_naming_the_alias_and_counts():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_timeout=0.3)
    holder = make_wrapper(pool_size=1, pool_max_overflow=0, pool_timeout=0.3)
    holder.ensure_connection()
    try:
        with pytest.raises(PoolTimeout) as raised:
            wrapper.ensure_connection()
    finally:
        holder.close()
    assert isinstance(raised.value, OperationalError)
    message = str(raised.value)
    assert "'default'" in message
    assert "1 of 1 connections checked out" in message
    assert "Timed out after 0.3" in message


def test_closing_inside_an_atomic_block_discards_the_connection():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    record = wrapper.dataflow_record
    wrapper.set_autocommit(False)
    wrapper.in_atomic_block = True
    wrapper.close()
    # Django keeps the object until the block exits; it must not be lent again.
    pool = wrapper.dataflow_pool
    assert pool.get_stats()["invalidated_by_reason"] == {"closed_in_transaction": 1}
    assert record.lease == 0
    wrapper.in_atomic_block = False
    wrapper.connection = None


def test_conn_max_age_with_a_pool_is_refused_with_the_reason():
    settings_dict = {**connection.settings_dict, "CONN_MAX_AGE": 60}
    wrapper = wrapper_class()(settings_dict, "default")  # built at startup: no error yet
    with pytest.raises(ImproperlyConfigured, match=r"CONN_MAX_AGE=60.*pools connections"):
        wrapper.ensure_connection()
    assert wrapper.connection is None


def test_conn_health_checks_keep_working():
    settings_dict = {**connection.settings_dict, "CONN_HEALTH_CHECKS": True}
    wrapper = wrapper_class()(settings_dict, "default")
    for _ in range(3):
        wrapper.close_if_unusable_or_obsolete()
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        wrapper.close_if_unusable_or_obsolete()
        assert wrapper.dataflow_record is None  # returned (parked) after each request
    stats = wrapper.dataflow_pool.get_stats()
    assert (stats["checked_out"], stats["connections_created"]) == (0, 1)
    wrapper.close()
    assert wrapper.connection is None


def test_an_aborted_transaction_does_not_leak_to_the_next_borrower(vendor):
    from tests.testapp.models import Counter

    Counter.objects.create(name="kept", value=1)
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    raw = wrapper.connection
    cursor = raw.cursor()
    table = Counter._meta.db_table
    if vendor == "sqlite":
        cursor.execute("BEGIN")
    else:
        cursor.execute("START TRANSACTION" if vendor == "mysql" else "BEGIN")
    cursor.execute(f"UPDATE {table} SET value = 99")
    if vendor == "postgresql":
        with pytest.raises(Exception):  # noqa: B017  an error aborts the transaction
            cursor.execute("SELECT * FROM no_such_table")
    cursor.close()
    wrapper.close()
    # The next borrower gets the same physical connection, clean.
    wrapper.ensure_connection()
    assert wrapper.connection is raw
    with wrapper.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {table} WHERE name = 'kept'")
        assert cursor.fetchone()[0] == 1
    assert wrapper.get_autocommit()
    wrapper.close()


def test_threads_share_at_most_pool_size_plus_overflow_connections():
    # 50 threads, 6 connections: every thread gets one eventually, none is opened extra.
    pids = set()
    errors = []
    lock = threading.Lock()

    def work():
        try:
            for _ in range(3):
                request_started.send(sender=None)
                with connections["default"].cursor() as cursor:
                    cursor.execute("SELECT 1")
                pid = backend_pid(connections["default"])
                with lock:
                    pids.add(pid)
                request_finished.send(sender=None)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    pool = wrapper_class()(connection.settings_dict, "default")
    pool.ensure_connection()
    stats = pool.dataflow_pool.get_stats()
    pool.close()
    limit = stats["pool_size"] + stats["overflow_max"]
    assert stats["connections_created"] <= limit
    assert len(pids) <= limit
    assert stats["checkouts"] >= 150


def test_unknown_pool_option_names_the_nearest_valid_one():
    settings_dict = {**connection.settings_dict, "POOL": {"pool_sise": 3}}
    wrapper = wrapper_class()(settings_dict, "default")
    with pytest.raises(ImproperlyConfigured, match=r"'pool_sise'\. Did you mean 'pool_size'"):
        wrapper.ensure_connection()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("pool_size", 0, "must be >= 1"),
        ("pool_size", "20", "must be a whole number"),
        ("pool_size", True, "must be a whole number"),
        ("pool_max_overflow", -1, "must be >= 0"),
        ("pool_timeout", 0, "must be greater than 0"),
        ("pool_pre_ping", "yes", "must be True or False"),
        ("pool_recycle", "1h", "must be a number of seconds"),
    ],
)
def test_bad_pool_values_name_the_key(key, value, expected):
    settings_dict = {**connection.settings_dict, "POOL": {key: value}}
    with pytest.raises(ImproperlyConfigured) as raised:
        wrapper_class()(settings_dict, "default").ensure_connection()
    assert f"['POOL'][{key!r}]" in str(raised.value)
    assert expected in str(raised.value)


def rollbacks_seen_by_server(wrapper):
    """MySQL/MariaDB count the ROLLBACKs of a session in its session status."""
    with wrapper.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Com_rollback'")
        return int(cursor.fetchone()[1])


@pytest.mark.parametrize("transaction_open", [False, True])
def test_return_rolls_back_only_when_a_transaction_is_open(vendor, tmp_path, transaction_open):
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    raw = wrapper.connection
    if transaction_open:
        raw.cursor().execute("START TRANSACTION" if vendor == "mysql" else "BEGIN")
    if vendor == "mysql":
        before = rollbacks_seen_by_server(wrapper)
        wrapper.close()
        wrapper.ensure_connection()
        assert wrapper.connection is raw
        assert rollbacks_seen_by_server(wrapper) == before + int(transaction_open)
    elif vendor == "postgresql":
        # libpq's protocol trace shows every message sent to the server during checkin.
        trace = tmp_path / "trace"
        with open(trace, "w") as trace_file:
            raw.pgconn.trace(trace_file.fileno())
            wrapper.close()
            raw.pgconn.untrace()
        sent = trace.read_text()
        if transaction_open:
            assert "ROLLBACK" in sent
        else:
            assert sent == "", "an idle autocommit connection must come back without a round trip"
    else:
        wrapper.close()
        assert not raw.in_transaction
    wrapper.close()


def test_calling_close_underscore_directly_really_closes_the_connection():
    # Django's own tests emulate a server-side disconnect with connection._close().
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    raw = wrapper.connection
    wrapper._close()
    if wrapper.vendor != "sqlite":  # SQLite's is_usable() is always True
        assert not wrapper.is_usable()
    with contextlib.suppress(Exception):  # closing it again fails on MySQL, as in Django
        wrapper.close()
    stats = wrapper.dataflow_pool.get_stats()
    assert stats["invalidated_by_reason"] == {"closed_directly": 1}
    wrapper.ensure_connection()
    assert wrapper.connection is not raw
    assert wrapper.is_usable()
    wrapper.close()


def test_statement_cache_size_sizes_psycopgs_prepared_statement_cache(vendor):
    if vendor != "postgresql":
        pytest.skip("psycopg's prepared statements are PostgreSQL only")
    wrapper = make_wrapper(statement_cache_size=7)
    wrapper.ensure_connection()
    assert wrapper.connection.prepared_max == 7
    wrapper.close()


def test_wrappers_that_built_their_own_psycopg_adapters_share_one_pool(vendor):
    # Django's get_connection_params() puts psycopg's adapters in the parameters, from
    # an lru_cache that threads starting together may fill twice: two equal but distinct
    # adapter maps. Keyed by them, one alias got two pools (twice its connection limit).
    if vendor != "postgresql":
        pytest.skip("the adapters context is psycopg's")
    from django.db.backends.postgresql.psycopg_any import get_adapters_template

    first, second = make_wrapper(pool_size=3), make_wrapper(pool_size=3)
    try:
        first.ensure_connection()
        first_context = first.get_connection_params()["context"]
        get_adapters_template.cache_clear()  # as if a second thread had raced the first
        second.ensure_connection()
        assert second.get_connection_params()["context"] is not first_context
        assert second._dataflow_lease.pool is first._dataflow_lease.pool
    finally:
        first.close()
        second.close()


def test_a_connection_that_fails_djangos_usability_check_is_discarded(vendor):
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    raw = wrapper.connection
    wrapper.errors_occurred = True  # as after an error in the request
    wrapper.connection.close()  # the connection died (closed under Django's feet)
    if vendor == "sqlite":
        pytest.skip("SQLite's is_usable() is always True; the closed check covers it")
    wrapper.close_if_unusable_or_obsolete()  # what request_finished does
    assert wrapper.connection is None
    wrapper.ensure_connection()
    assert wrapper.connection is not raw
    assert wrapper.dataflow_pool.get_stats()["invalidated_by_reason"] == {"unusable": 1}
    wrapper.close()


def test_a_raw_connection_closed_behind_the_pools_back_is_never_lent_again():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_pre_ping=False)
    wrapper.ensure_connection()
    raw = wrapper.connection
    wrapper.close()
    raw.close()
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert wrapper.connection is not raw
    wrapper.close()


def test_djangos_own_pool_option_is_refused_when_connecting(vendor):
    if vendor != "postgresql":
        pytest.skip("Django's native pool is PostgreSQL's")
    options = {**connection.settings_dict["OPTIONS"], "pool": {"min_size": 1}}
    wrapper = wrapper_class()({**connection.settings_dict, "OPTIONS": options}, "default")
    with pytest.raises(ImproperlyConfigured, match=r"OPTIONS\['pool'\]"):
        wrapper.ensure_connection()


@pytest.fixture
def ten_items(vendor):
    from tests.testapp.models import Item

    if vendor != "postgresql":
        pytest.skip("server-side cursors WITH HOLD: PostgreSQL's QuerySet.iterator()")
    if connections["default"].settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        pytest.skip("server-side cursors are disabled (a transaction pooler in front)")
    Item.objects.bulk_create(Item(name=str(n)) for n in range(10))
    original = connections["default"]
    yield Item
    connections["default"] = original


@pytest.mark.parametrize("request_end", ["park", "close"])
def test_a_server_side_cursor_left_open_by_a_request_is_closed_before_the_next_borrower(
    ten_items, request_end
):
    """An iterator that outlives its request leaves its cursor WITH HOLD in the session
    (Django declares it so in autocommit mode). With Django's own backend the connection
    closes and the cursor with it; with the pool the next borrower must not inherit it,
    nor fail on the cursor name a new wrapper in a reused thread generates again."""
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 2}
    first = make_wrapper(**options)
    connections["default"] = first
    first.close_if_unusable_or_obsolete()  # request_started
    left_open = ten_items.objects.iterator(chunk_size=2)
    next(left_open)
    if request_end == "park":
        first.close_if_unusable_or_obsolete()  # request_finished
    else:
        first.close()

    second = make_wrapper(**options)  # the next request: a fresh wrapper, same thread
    connections["default"] = second
    try:
        with second.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_cursors")
            assert cursor.fetchone()[0] == 0
        assert len(list(ten_items.objects.iterator(chunk_size=2))) == 10
    finally:
        second.close()
        first.close()
    with pytest.raises(Exception, match="closed"):
        list(left_open)  # it cannot read through a connection it no longer holds
