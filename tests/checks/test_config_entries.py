"""DataFlowConfig entries against the real server of this run: what the config promises
(pool size, prepared statements, isolation level, WAL) is what the connections get.

These live beside the server checks because both need a database per vendor."""

from __future__ import annotations

import pytest

from django_dataflow import DataFlowConfig
from django_dataflow.pool import registry

pytestmark = pytest.mark.django_db


def pool_of(wrapper):
    [pool] = registry.all_pools(wrapper.alias)
    return pool


def scalar(wrapper, sql: str):
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_an_entry_built_from_a_url_with_pool_options_connects_through_a_pool_of_that_size(
    wrapper_for, server_url
):
    wrapper = wrapper_for(
        DataFlowConfig(database_url=server_url("?pool_size=3&pool_max_overflow=1")).as_database()
    )
    assert scalar(wrapper, "SELECT 1") == 1
    stats = pool_of(wrapper).get_stats()
    assert (stats["pool_size"], stats["overflow_max"]) == (3, 1)


@pytest.fixture
def postgresql_only(vendor):
    if vendor != "postgresql":
        pytest.skip("prepared statements through psycopg are PostgreSQL's")


def prepared_statements(wrapper) -> int:
    return scalar(wrapper, "SELECT count(*) FROM pg_prepared_statements")


@pytest.mark.usefixtures("postgresql_only")
def test_statement_cache_size_makes_psycopg_prepare_repeated_queries(wrapper_for, server_url):
    wrapper = wrapper_for(
        DataFlowConfig(database_url=server_url(), statement_cache_size=7).as_database()
    )
    wrapper.ensure_connection()
    assert wrapper.connection.prepared_max == 7
    for _ in range(6):  # psycopg prepares a query on its fifth execution
        assert scalar(wrapper, "SELECT 42 WHERE 1 = 1") == 42
    assert prepared_statements(wrapper) >= 1


@pytest.mark.usefixtures("postgresql_only")
def test_without_statement_cache_nothing_is_prepared(wrapper_for, server_url):
    wrapper = wrapper_for(DataFlowConfig(database_url=server_url()).as_database())
    for _ in range(6):
        scalar(wrapper, "SELECT 42 WHERE 1 = 1")
    assert prepared_statements(wrapper) == 0


def test_isolation_level_in_the_guides_spelling_reaches_the_session(
    wrapper_for, server_url, vendor
):
    if vendor == "sqlite":
        pytest.skip("SQLite has no isolation levels to choose")
    wrapper = wrapper_for(
        DataFlowConfig(database_url=server_url(), isolation_level="REPEATABLE_READ").as_database()
    )
    if vendor == "postgresql":
        wrapper.set_autocommit(False)  # the level applies to the transaction psycopg begins
        assert scalar(wrapper, "SHOW transaction_isolation") == "repeatable read"
        wrapper.rollback()
        wrapper.set_autocommit(True)
    else:
        assert scalar(wrapper, "SELECT @@SESSION.tx_isolation") == "REPEATABLE-READ"


@pytest.fixture
def sqlite_only(vendor):
    if vendor != "sqlite":
        pytest.skip("an SQLite file test")


@pytest.mark.usefixtures("sqlite_only")
def test_sqlite_entries_use_wal_and_immediate_transactions(wrapper_for, tmp_path):
    database = tmp_path / "cfg_wal.sqlite3"
    wrapper = wrapper_for(DataFlowConfig(database_url=f"sqlite:///{database}").as_database())
    assert scalar(wrapper, "PRAGMA journal_mode") == "wal"
    assert scalar(wrapper, "PRAGMA synchronous") == 1  # NORMAL
    assert wrapper.transaction_mode == "IMMEDIATE"
    assert pool_of(wrapper).get_stats()["pool_size"] == 5
