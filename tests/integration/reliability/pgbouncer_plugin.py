"""pytest plugin for running the PostgreSQL tests through PgBouncer (transaction mode).

    pytest --ds=tests.dbsettings.pgbouncer \
        -p tests.integration.reliability.pgbouncer_plugin tests ...

Two things PgBouncer changes that are not about django-dataflow:

* PostgreSQL refuses ``DROP DATABASE`` while any session is connected, and PgBouncer
  keeps idle *server* sessions on every database a client used (until
  ``server_idle_timeout``). Test databases, and the scratch databases some tests make,
  could not be dropped. Before a ``DROP DATABASE`` sent through PgBouncer, this plugin
  tells PgBouncer's admin console to close its sessions on that database (``KILL``, then
  ``RESUME``), which is what an operator does before dropping a database behind a pooler.
* A few tests identify *server* sessions (backend pids, ``pg_stat_activity``,
  ``pg_prepared_statements``) or configure what a transaction pooler forbids. Behind
  PgBouncer a client connection has no server session of its own, so these tests do not
  apply; they are skipped with the reason, and docs/reliability.md lists them with the
  scenario that covers the same promise through PgBouncer.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.integration.reliability.servers import PgBouncer

DROP_DATABASE = re.compile(r'^\s*DROP\s+DATABASE\s+(?:IF\s+EXISTS\s+)?"?([\w$]+)"?', re.I)

SESSION_IDENTITY = (
    "identifies server sessions by backend pid; behind PgBouncer a client connection has "
    "no server session of its own (tests/integration/reliability/test_pgbouncer.py covers "
    "kills there)"
)
FORK = (
    SESSION_IDENTITY
    + "; fork safety: tests/integration/reliability/test_web_servers.py, test_celery.py"
)
RESET_ON_RETURN = (
    "turns on pool_reset_on_return, which behind_transaction_pooler refuses: behind a "
    "transaction pooler PgBouncer's server_reset_query resets the server sessions"
)
NOT_APPLICABLE = {
    "tests/backends/test_isolation.py::"
    "test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone[checked_out]": FORK,
    "tests/backends/test_isolation.py::"
    "test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone[parked]": FORK,
    "tests/backends/test_resilience.py::"
    "test_pre_ping_replaces_a_killed_idle_connection_without_an_error": SESSION_IDENTITY,
    "tests/backends/test_resilience.py::"
    "test_a_connection_that_died_in_use_is_discarded_and_its_siblings_are_checked": (
        SESSION_IDENTITY
    ),
    "tests/backends/test_resilience.py::test_recycle_replaces_a_connection_past_its_lifetime": (
        SESSION_IDENTITY
    ),
    "tests/backends/test_thread_affinity.py::"
    "test_a_parked_connection_killed_on_the_server_is_replaced_without_an_error": (
        SESSION_IDENTITY
    ),
    "tests/backends/test_thread_affinity.py::test_closing_the_pool_closes_a_parked_connection": (
        SESSION_IDENTITY
    ),
    "tests/backends/test_transaction_scope.py::"
    "test_a_session_advisory_lock_stays_with_the_pooled_session": (
        "takes a session-level advisory lock; behind a transaction pooler the server "
        "session changes between transactions, which is why such locks are refused there"
    ),
    "tests/backends/test_glue_chaos.py::test_glue_chaos[1]": SESSION_IDENTITY,
    "tests/backends/test_glue_chaos.py::test_glue_chaos[2]": SESSION_IDENTITY,
    "tests/backends/test_glue_chaos.py::test_glue_chaos[3]": SESSION_IDENTITY,
    "tests/backends/test_lifecycle_corners.py::"
    "test_fork_while_another_thread_has_a_parked_connection": FORK,
    "tests/backends/test_parked_fallback.py::"
    "test_a_failed_connect_below_the_limit_falls_back_to_a_parked_connection": (
        "creates a server role limited to one session and logs in as it; behind PgBouncer "
        "the role is not in PgBouncer's auth file, and the sessions are PgBouncer's"
    ),
    "tests/backends/test_lifecycle.py::"
    "test_statement_cache_size_sizes_psycopgs_prepared_statement_cache": (
        "sets statement_cache_size, which behind_transaction_pooler refuses (dataflow.E006)"
    ),
    "tests/backends/test_reset_on_return.py::test_a_tenant_set_by_one_request_"
    "reaches_the_next_only_without_the_reset[True]": RESET_ON_RETURN,
    "tests/backends/test_reset_on_return.py::"
    "test_temporary_tables_end_with_the_request": RESET_ON_RETURN,
    "tests/backends/test_reset_on_return.py::"
    "test_a_transaction_left_open_is_rolled_back_and_the_session_still_reset": RESET_ON_RETURN,
    "tests/backends/test_reset_on_return.py::"
    "test_a_reset_connection_is_never_parked": RESET_ON_RETURN,
    "tests/backends/test_reset_on_return.py::"
    "test_the_session_time_zone_is_djangos_again_after_a_reset": RESET_ON_RETURN,
    "tests/backends/test_reset_on_return.py::"
    "test_prepared_statements_survive_the_reset_of_their_cache": RESET_ON_RETURN,
    "tests/backends/test_reset_on_return.py::"
    "test_djangos_setup_and_the_connect_hooks_run_again_after_a_reset": RESET_ON_RETURN,
    "tests/backends/test_retired_pools.py::"
    "test_the_old_database_can_be_dropped_after_a_name_change_and_back": (
        "counts the server sessions on a database in pg_stat_activity; behind PgBouncer "
        "they are PgBouncer's, kept until its server_idle_timeout"
    ),
    "tests/backends/test_server_full.py::test_a_role_out_of_sessions_serves_every_request": (
        "creates a server role limited to two sessions and logs in as it; behind PgBouncer "
        "the role is not in PgBouncer's auth file, and the sessions are PgBouncer's"
    ),
    "tests/checks/test_config_entries.py::"
    "test_statement_cache_size_makes_psycopg_prepare_repeated_queries": (
        "prepares statements, which a transaction pooler cannot carry (see "
        "test_pgbouncer.py::test_prepared_statements_break_behind_a_transaction_pooler)"
    ),
    "tests/checks/test_config_entries.py::test_without_statement_cache_nothing_is_prepared": (
        "counts pg_prepared_statements of a server session, which PgBouncer shares with "
        "other clients' transactions"
    ),
    "tests/monitoring/test_server.py::"
    "test_server_view_groups_the_pooled_sessions_by_worker_process": (
        "reads pg_stat_activity, where the server sessions are PgBouncer's; "
        "pool_stats --server reads SHOW POOLS on PgBouncer's admin console instead"
    ),
    "tests/monitoring/test_server.py::test_server_table_names_the_state_and_its_duration": (
        "reads pg_stat_activity, where the server sessions are PgBouncer's"
    ),
    "tests/monitoring/test_server.py::test_pooled_postgresql_sessions_carry_prefix_alias_and_pid": (
        "reads pg_stat_activity, where the server sessions are PgBouncer's"
    ),
    "tests/monitoring/test_server.py::"
    "test_an_unreachable_server_exits_2_without_showing_the_password": (
        "makes the server unreachable through POSTGRES_PORT; these settings use PgBouncer's port"
    ),
}

_bouncer = PgBouncer()
_original_execute = psycopg.Cursor.execute


def release_database(name: str) -> None:
    """Close PgBouncer's server sessions on database ``name`` (and let clients back in)."""
    try:
        with _bouncer.connect() as admin:
            admin.execute(f"KILL {name}")
            admin.execute(f"RESUME {name}")
    except psycopg.Error:
        pass  # PgBouncer never saw that database: nothing to release


def _execute(self, query, params=None, **kwargs):
    if isinstance(query, str) and self.connection.info.port == _bouncer.port:
        match = DROP_DATABASE.match(query)
        if match:
            release_database(match.group(1))
    return _original_execute(self, query, params, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    psycopg.Cursor.execute = _execute


def pytest_unconfigure(config: pytest.Config) -> None:
    psycopg.Cursor.execute = _original_execute


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reason = NOT_APPLICABLE.get(item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"behind PgBouncer: {reason}"))
