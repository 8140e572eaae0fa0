"""Lifecycle hooks, error handlers, active connections and pooled_connection(), on the
server of this run."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest
from django.db import DatabaseError, connections

from django_dataflow import (
    DataFlow,
    HookError,
    PoolTimeout,
    error_handler,
    get_active_connections,
    on_checkin,
    on_checkout,
    on_connect,
    pooled_connection,
)
from django_dataflow import hooks as hooks_module
from django_dataflow.signals import (
    pool_invalidate,
    pool_timeout,
)
from tests.backends.helpers import make_wrapper

pytestmark = pytest.mark.django_db(transaction=True)


def fetch_one(wrapper, sql):
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_the_guides_hook_examples_run_as_written(vendor, caplog):
    db = DataFlow(using="default")
    logger = logging.getLogger("guide")

    # --- the guide's code, imports aside ---
    @db.on_connect
    def configure_connection(connection, connection_record):
        """Configure each new connection."""
        # PostgreSQL: Set search path
        if db.dialect == "postgresql":
            connection.execute("SET search_path TO myapp, public")

        # MySQL: Set timezone
        elif db.dialect == "mysql":
            connection.execute("SET time_zone = '+00:00'")

        # Set application name for monitoring
        connection.execute(f"SET application_name = 'dataflow-{os.getpid()}'")

    @db.on_checkout
    def on_checkout(connection, connection_record, connection_proxy):
        """Called when connection is checked out from pool."""
        # Track connection usage
        connection_record.info["checkout_time"] = time.time()

        # Set transaction isolation if needed
        if hasattr(connection_proxy, "_isolation_level"):
            connection.execute(
                f"SET TRANSACTION ISOLATION LEVEL {connection_proxy._isolation_level}"
            )

    @db.on_checkin
    def on_checkin(connection, connection_record):
        """Called when connection is returned to pool."""
        # Calculate usage time
        checkout_time = connection_record.info.get("checkout_time", 0)
        usage_time = time.time() - checkout_time

        # Log slow connection usage
        if usage_time > 5.0:
            logger.warning(f"Connection held for {usage_time:.2f} seconds")

    # --- end of the guide's code ---

    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    record = wrapper.dataflow_record
    assert "checkout_time" in record.info
    if vendor == "postgresql":
        assert fetch_one(wrapper, "SHOW search_path") == "myapp, public"
        assert fetch_one(wrapper, "SHOW application_name") == f"dataflow-{os.getpid()}"
    else:
        assert record.info["application_name"] == f"dataflow-{os.getpid()}"
    if vendor == "mysql":
        assert fetch_one(wrapper, "SELECT @@session.time_zone") == "+00:00"
    # A slow checkout makes the checkin hook warn.
    record.info["checkout_time"] -= 6
    with caplog.at_level(logging.WARNING, logger="guide"):
        wrapper.close()
    assert "Connection held for 6." in caplog.text


def test_hooks_run_once_per_physical_connection_and_every_checkout():
    calls = []
    on_connect(lambda connection, record: calls.append("connect"))
    on_checkout(lambda connection, record, proxy: calls.append("checkout"))
    on_checkin(lambda connection, record: calls.append("checkin"))
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    for _ in range(3):
        wrapper.ensure_connection()
        wrapper.close()
    assert calls == ["connect"] + ["checkout", "checkin"] * 3


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_hooks_can_be_limited_to_one_alias():
    seen = []

    @on_connect(using="other")
    def only_other(connection, connection_record):
        seen.append("other")

    wrapper = make_wrapper("default")
    wrapper.ensure_connection()
    wrapper.close()
    assert seen == []
    other = make_wrapper("other")
    other.ensure_connection()
    other.close()
    assert seen == ["other"]


def test_a_failing_connect_hook_closes_the_new_connection_and_raises_a_database_error():
    @on_connect
    def broken(connection, connection_record):
        raise RuntimeError("cannot configure")

    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    with pytest.raises(HookError) as raised:
        wrapper.ensure_connection()
    assert isinstance(raised.value, DatabaseError)
    assert "pool_connect" in str(raised.value)
    assert isinstance(raised.value.__cause__, RuntimeError)
    stats = wrapper.dataflow_pool.get_stats()
    assert stats["total"] == 0 and stats["checked_out"] == 0
    assert stats["invalidated_by_reason"] == {"setup_failed": 1}
    assert stats["connections_closed"] == 1


def test_a_connect_hook_with_bad_sql_raises_djangos_error():
    @on_connect
    def bad_sql(connection, connection_record):
        connection.execute("THIS IS NOT SQL")

    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    with pytest.raises(DatabaseError) as raised:
        wrapper.ensure_connection()
    assert type(raised.value).__module__ == "django.db.utils"
    assert wrapper.dataflow_pool.get_stats()["total"] == 0


def test_a_failing_checkout_hook_gives_the_connection_back():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    wrapper.close()

    @on_checkout
    def broken(connection, connection_record, connection_proxy):
        raise ValueError("no")

    with pytest.raises(HookError):
        wrapper.ensure_connection()
    assert wrapper.connection is None
    stats = wrapper.dataflow_pool.get_stats()
    assert stats["total"] == 1 and stats["idle_connections"] == 1
    assert stats["invalidated"] == 0


def test_a_failing_checkin_hook_discards_the_connection_without_bothering_the_caller(caplog):
    @on_checkin
    def broken(connection, connection_record):
        raise ValueError("no")

    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    with caplog.at_level(logging.ERROR, logger="django_dataflow.pool"):
        wrapper.close()  # does not raise
    assert "pool_checkin receiver" in caplog.text
    stats = wrapper.dataflow_pool.get_stats()
    assert stats["invalidated_by_reason"] == {"hook_failed": 1}
    assert stats["total"] == 0


def hold_connection_in_thread(options, seconds):
    """Check out the only connection from another thread and give it back later."""
    ready = threading.Event()

    def hold():
        holder = make_wrapper(**options)
        holder.ensure_connection()
        ready.set()
        time.sleep(seconds)
        holder.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait(5)
    return thread


def test_an_error_handler_can_retry_a_timed_out_checkout():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 0.1}
    contexts = []

    @error_handler
    def handle_pool_timeout(error, context):
        contexts.append(dict(context))
        if isinstance(error, PoolTimeout) and context.get("retry_count", 0) < 3:
            return {"action": "retry", "delay": 0.1}
        return {"action": "queue"}

    thread = hold_connection_in_thread(options, 0.3)
    wrapper = make_wrapper(**options)
    wrapper.ensure_connection()  # succeeds on a retry
    wrapper.close()
    thread.join()
    assert contexts[0]["alias"] == "default"
    assert contexts[0]["retry_count"] == 0
    assert contexts[0]["stats"]["checked_out"] == 1
    assert 1 <= len(contexts) <= 3


def test_retries_are_bounded_and_the_timeout_propagates():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 0.05}
    calls = []
    error_handler(lambda error, context: calls.append(1) or {"action": "retry", "delay": 0})
    thread = hold_connection_in_thread(options, 1.0)
    wrapper = make_wrapper(**options)
    with pytest.raises(PoolTimeout):
        wrapper.ensure_connection()
    thread.join()
    assert len(calls) == hooks_module.MAX_RETRIES


def test_without_an_error_handler_the_timeout_propagates_and_is_signalled():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 0.05}
    signalled = []
    pool_timeout.connect(lambda sender, **kw: signalled.append(kw), weak=False)
    thread = hold_connection_in_thread(options, 0.5)
    wrapper = make_wrapper(**options)
    with pytest.raises(PoolTimeout):
        wrapper.ensure_connection()
    thread.join()
    assert signalled and signalled[0]["alias"] == "default"
    assert signalled[0]["stats"]["timeouts"] == 1
    assert signalled[0]["waited"] >= 0.05


def test_invalidation_is_signalled_with_its_reason():
    reasons = []
    pool_invalidate.connect(lambda sender, reason, **kw: reasons.append(reason), weak=False)
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.ensure_connection()
    wrapper.dataflow_record.invalidate()
    wrapper.close()
    assert reasons == ["manual"]


def test_active_connections_show_who_holds_what_and_can_be_invalidated():
    options = {"pool_size": 2, "pool_max_overflow": 0}
    thread = hold_connection_in_thread(options, 0.5)
    active = get_active_connections("default")
    assert len(active) == 1
    connection = active[0]
    assert connection.thread is thread
    assert connection.checked_out_for > 0
    assert connection.age >= connection.checked_out_for
    connection.info["seen"] = True
    connection.invalidate()
    thread.join()
    pool = make_wrapper(**options)
    pool.ensure_connection()
    stats = pool.dataflow_pool.get_stats()
    assert stats["invalidated_by_reason"] == {"manual": 1}
    assert "seen" not in pool.dataflow_record.info  # a new physical connection
    pool.close()


def test_invalidating_the_threads_own_connection_closes_it_now():
    connection = connections["default"]
    connection.ensure_connection()
    (active,) = [a for a in get_active_connections("default") if a.thread]
    active.invalidate()
    assert connection.connection is None


def test_pooled_connection_always_gives_the_connection_back():
    connection = connections["default"]
    with pytest.raises(ZeroDivisionError), pooled_connection("default") as conn:
        assert conn.execute("SELECT 1") == [(1,)]
        raise ZeroDivisionError
    assert connection.connection is None
    assert not get_active_connections("default")


def test_pooled_connection_leaves_the_threads_own_connection_alone():
    connection = connections["default"]
    connection.ensure_connection()
    own = connection.connection
    with pooled_connection("default") as conn:
        assert conn.connection is not own
        assert conn.execute("SELECT 1") == [(1,)]
    assert connection.connection is own
    assert len(get_active_connections("default")) == 1


def test_the_facade_carries_the_guides_names(vendor):
    db = DataFlow("default")
    assert db.dialect == vendor
    with db.connection() as conn:
        assert conn.execute("SELECT 1") == [(1,)]
        assert len(db.get_active_connections()) == 1


def test_debug_logging_tells_the_story_without_secrets(vendor, caplog):
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)
    wrapper.settings_dict["PASSWORD"] = "s3cret-never-logged" if vendor == "postgresql" else ""
    with caplog.at_level(logging.DEBUG, logger="django_dataflow.pool"):
        wrapper.ensure_connection()
        wrapper.dataflow_record.invalidate()
        wrapper.close()
    text = caplog.text
    assert "Opened a new connection" in text
    assert "Checked out a connection" in text
    assert "Checked in a connection" in text
    assert "Discarding a connection" in text and "manual" in text
    assert "s3cret" not in text


def test_a_leaked_connection_is_reported_with_its_stack_and_recycled(caplog):
    from django_dataflow.signals import pool_leak

    leaks = []
    pool_leak.connect(lambda sender, **kw: leaks.append(kw), weak=False)
    wrapper = make_wrapper(
        pool_size=1,
        pool_max_overflow=0,
        pool_leak_threshold=0.1,
        pool_leak_check_interval=0.01,
        pool_leak_action="log_and_recycle",
    )
    wrapper.ensure_connection()
    time.sleep(0.2)
    with caplog.at_level(logging.WARNING, logger="django_dataflow.pool"):
        wrapper.dataflow_pool.maintain()  # what the housekeeper does every second
    assert "Possible connection leak on 'default'" in caplog.text
    assert "test_a_leaked_connection_is_reported" in caplog.text  # the checkout stack
    assert len(leaks) == 1 and leaks[0]["checked_out_for"] >= 0.1
    assert "ensure_connection" in leaks[0]["stack"]
    wrapper.close()
    stats = wrapper.dataflow_pool.get_stats()
    assert stats["leaks"] == 1
    assert stats["invalidated_by_reason"] == {"leak": 1}
