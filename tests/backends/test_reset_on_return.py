"""POOL["pool_reset_on_return"]: every return resets the whole session (PostgreSQL
DISCARD ALL, MariaDB's COM_RESET_CONNECTION), so raw session state (a tenant set for
row-level security, temporary tables) ends with the request that set it; Django's setup
of the session (time zone, role, init_command) is put back; the connection is kept.

Off (the default), that state stays with the physical connection and reaches the next
borrower, as docs/backends.md says.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_dataflow.settings.validation import resolve_pool_options
from tests.backends.helpers import backend_pid, make_wrapper

pytestmark = pytest.mark.django_db(transaction=True)

SET_TENANT = {
    "postgresql": "SELECT set_config('app.tenant', 'a', false)",
    "mysql": "SET @tenant = 'a'",
}
READ_TENANT = {
    # The second argument: missing_ok (None rather than an error once reset).
    "postgresql": "SELECT current_setting('app.tenant', true)",
    "mysql": "SELECT @tenant",
}


def two_borrowers(**options):
    """Two wrappers on one single-connection pool: the second always gets the first's
    physical connection."""
    options = {"pool_size": 1, "pool_max_overflow": 0, **options}
    return make_wrapper(**options), make_wrapper(**options)


def two_borrowers_with(driver_options, **options):
    """two_borrowers() with these OPTIONS too, reset on return."""
    pair = two_borrowers(pool_reset_on_return=True, **options)
    for wrapper in pair:
        wrapper.settings_dict["OPTIONS"] = {**wrapper.settings_dict["OPTIONS"], **driver_options}
    return pair


def end_request(wrapper):
    wrapper.close_if_unusable_or_obsolete()  # request_finished: parks or checks in
    wrapper.close()  # and really give it back, so that the other wrapper can take it


def one_value(wrapper, sql):
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def run(wrapper, sql):
    with wrapper.cursor() as cursor:
        cursor.execute(sql)


@pytest.mark.parametrize("reset", [True, False])
def test_a_tenant_set_by_one_request_reaches_the_next_only_without_the_reset(server_vendor, reset):
    first, second = two_borrowers(pool_reset_on_return=reset)
    pid = backend_pid(first)
    run(first, SET_TENANT[server_vendor])
    end_request(first)
    try:
        assert backend_pid(second) == pid  # the same session: nothing was discarded
        tenant = one_value(second, READ_TENANT[server_vendor])
        if reset:
            assert tenant in (None, "")  # PostgreSQL: '' for a placeholder once reset
        else:
            assert tenant == "a"  # the documented behaviour without the option
    finally:
        second.close()


def test_temporary_tables_end_with_the_request(server_vendor):
    first, second = two_borrowers(pool_reset_on_return=True)
    pid = backend_pid(first)
    run(first, "CREATE TEMPORARY TABLE dataflow_scratch (i integer)")
    end_request(first)
    try:
        assert backend_pid(second) == pid
        run(second, "CREATE TEMPORARY TABLE dataflow_scratch (i integer)")  # not there
    finally:
        second.close()


def test_a_transaction_left_open_is_rolled_back_and_the_session_still_reset(server_vendor):
    # DISCARD ALL refuses to run inside a transaction block: the rollback comes first.
    first, second = two_borrowers(pool_reset_on_return=True)
    pid = backend_pid(first)
    run(first, "BEGIN" if server_vendor == "postgresql" else "START TRANSACTION")
    run(first, SET_TENANT[server_vendor])
    end_request(first)
    try:
        assert backend_pid(second) == pid
        assert one_value(second, READ_TENANT[server_vendor]) in (None, "")
    finally:
        second.close()


def test_a_reset_connection_is_never_parked(server_vendor):
    wrapper = make_wrapper(pool_reset_on_return=True)
    try:
        run(wrapper, "SELECT 1")
        wrapper.close_if_unusable_or_obsolete()  # request_finished
        assert not wrapper._dataflow_parked
        assert wrapper.dataflow_pool.get_stats()["checked_out"] == 0
    finally:
        wrapper.close()


def test_the_session_time_zone_is_djangos_again_after_a_reset(vendor):
    # The session's default zone (from the startup packet) differs from Django's, so
    # DISCARD ALL brings the default back, and the reset must set Django's again.
    if vendor != "postgresql":
        pytest.skip("PostgreSQL: Django sets the session time zone")
    first, second = two_borrowers_with({"options": "-c timezone=Asia/Tokyo"})
    pid = backend_pid(first)
    assert one_value(first, "SHOW TimeZone") == "UTC"
    run(first, "SET TIME ZONE 'America/New_York'")
    end_request(first)
    try:
        assert backend_pid(second) == pid
        assert one_value(second, "SHOW TimeZone") == "UTC"
        run(second, "RESET TimeZone")  # the reset did bring the session default back
        assert one_value(second, "SHOW TimeZone") == "Asia/Tokyo"
    finally:
        second.close()


def test_init_command_runs_again_after_a_reset(vendor):
    if vendor != "mysql":
        pytest.skip("MySQL/MariaDB: COM_RESET_CONNECTION forgets what init_command set")
    first, second = two_borrowers_with({"init_command": "SET time_zone = '+03:00'"})
    pid = backend_pid(first)
    run(first, "SET time_zone = '+05:00'")
    end_request(first)
    try:
        assert backend_pid(second) == pid
        assert one_value(second, "SELECT @@session.time_zone") == "+03:00"
        assert one_value(second, "SELECT @@session.autocommit") == 1
        assert second.connection.get_autocommit()
    finally:
        second.close()


def test_prepared_statements_survive_the_reset_of_their_cache(vendor):
    # DISCARD ALL deallocates them on the server; psycopg must forget them too, or its
    # next use of one fails ("prepared statement _pg3_0 does not exist").
    if vendor != "postgresql":
        pytest.skip("psycopg's prepared statements")
    first, second = two_borrowers_with(
        {"server_side_binding": True, "prepare_threshold": 1}, statement_cache_size=10
    )
    pid = backend_pid(first)
    for _ in range(3):
        assert one_value(first, "SELECT 41 + 1") == 42
    assert first.connection._prepared._names  # it was prepared
    end_request(first)
    try:
        assert backend_pid(second) == pid
        for _ in range(3):
            assert one_value(second, "SELECT 41 + 1") == 42
    finally:
        second.close()


def test_djangos_setup_and_the_connect_hooks_run_again_after_a_reset(server_vendor):
    from django_dataflow.signals import pool_connect

    seen = []

    def receiver(sender, connection, **kwargs):
        seen.append(sender)

    pool_connect.connect(receiver, weak=False)
    try:
        first, second = two_borrowers(pool_reset_on_return=True)
        run(first, "SELECT 1")
        end_request(first)
        run(second, "SELECT 1")
        second.close()
    finally:
        pool_connect.disconnect(receiver)
    assert len(seen) == 2


def test_sqlite_refuses_the_reset_and_accepts_it_off():
    entry = {"ENGINE": "django_dataflow.backends.sqlite3", "NAME": "x.sqlite3"}
    with pytest.raises(ImproperlyConfigured, match="pool_reset_on_return"):
        resolve_pool_options("default", "sqlite", {**entry, "POOL": {"pool_reset_on_return": True}})
    options = resolve_pool_options(
        "default", "sqlite", {**entry, "POOL": {"pool_reset_on_return": False}}
    )
    assert "pool_reset_on_return" not in options


def test_the_reset_is_refused_behind_a_transaction_pooler():
    from django_dataflow.backends.postgresql.connector import PostgreSQLConnector

    options = {"pool_reset_on_return": True, "behind_transaction_pooler": True}
    with pytest.raises(ImproperlyConfigured, match="server_reset_query"):
        PostgreSQLConnector(template=None, options=options)


def test_djangos_isolation_level_is_set_again_after_a_reset(vendor):
    if vendor != "mysql":
        pytest.skip("MySQL/MariaDB: Django sets the isolation level on the session")
    first, second = two_borrowers(pool_reset_on_return=True)
    run(first, "SELECT 1")
    end_request(first)
    try:
        assert one_value(second, "SELECT @@session.tx_isolation") == "READ-COMMITTED"
    finally:
        second.close()
