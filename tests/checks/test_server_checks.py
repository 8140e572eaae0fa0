"""The system checks that ask the database server (dataflow.W003, W004), on the real
server of this run: each one triggered, and not triggered."""

from __future__ import annotations

import pytest
from django.core import checks as django_checks
from django.db import connections

from django_dataflow import DataFlowConfig
from django_dataflow.checks import server as checks
from tests.backends.helpers import admin_cursor

# The budget check sums the pools of both test aliases, so both may be asked.
pytestmark = pytest.mark.django_db(databases=["default", "other"])


def server_checks(*aliases: str):
    return django_checks.run_checks(databases=list(aliases), tags=["dataflow"])


def accepted_by_server(vendor: str) -> int:
    """What the server accepts from ordinary roles, asked independently of the check."""
    with admin_cursor(vendor) as cursor:
        if vendor == "postgresql":
            cursor.execute("SHOW max_connections")
            limit = int(cursor.fetchone()[0])
            cursor.execute("SHOW superuser_reserved_connections")
            return limit - int(cursor.fetchone()[0])
        cursor.execute("SELECT @@GLOBAL.max_connections")
        return int(cursor.fetchone()[0])


@pytest.fixture
def no_web_concurrency(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)


# -- W003: pool_recycle vs wait_timeout ------------------------------------------------------


@pytest.fixture
def mysql_only(vendor):
    if vendor != "mysql":
        pytest.skip("wait_timeout is a MySQL/MariaDB server setting")


def short_wait_timeout_wrapper(wrapper_for, server_url, **fields):
    """A pooled MySQL entry whose sessions time out after 60 idle seconds."""
    entry = DataFlowConfig(database_url=server_url(), **fields).as_database(
        OPTIONS={"init_command": "SET SESSION wait_timeout=60"}
    )
    return wrapper_for(entry), entry


@pytest.mark.usefixtures("mysql_only")
def test_w003_pool_recycle_at_or_above_the_sessions_wait_timeout(wrapper_for, server_url):
    wrapper, entry = short_wait_timeout_wrapper(wrapper_for, server_url, pool_recycle=60)
    [message] = checks.recycle_messages("cfg", entry["POOL"], wrapper)
    assert message.id == "dataflow.W003"
    assert "['pool_recycle'] is 60 s, not below the server's wait_timeout of 60 s" in message.msg
    assert "e.g. 54" in message.hint
    assert wrapper.connection is None, "the connection asked is returned to its pool"


@pytest.mark.usefixtures("mysql_only")
def test_w003_a_pool_that_never_recycles(wrapper_for, server_url):
    wrapper, entry = short_wait_timeout_wrapper(wrapper_for, server_url, pool_recycle=None)
    [message] = checks.recycle_messages("cfg", entry["POOL"], wrapper)
    assert "never recycles" in message.msg


@pytest.mark.usefixtures("mysql_only")
def test_w003_not_raised_when_pool_recycle_is_below_wait_timeout(wrapper_for, server_url):
    wrapper, entry = short_wait_timeout_wrapper(wrapper_for, server_url, pool_recycle=50)
    assert checks.recycle_messages("cfg", entry["POOL"], wrapper) == []


@pytest.mark.usefixtures("mysql_only", "no_web_concurrency")
def test_w003_not_raised_for_the_default_recycle_and_the_servers_wait_timeout():
    # The vendor default (7200 s) is below MariaDB's default wait_timeout (28800 s).
    assert connections["default"].dataflow_options["pool_recycle"] == 7200
    assert server_checks("default", "other") == []


# -- W004: the connection budget ----------------------------------------------------------------


@pytest.mark.usefixtures("server_vendor", "no_web_concurrency")
def test_w004_too_many_worker_processes_for_max_connections(settings, vendor):
    settings.DATAFLOW_WORKER_PROCESSES = 1000
    [message] = server_checks("default")
    accepted = accepted_by_server(vendor)
    # Both test aliases reach the same server: (4 + 2) + (4 + 2) per process.
    assert message.id == "dataflow.W004"
    assert message.msg.startswith(f"DATABASES 'default', 'other' ({vendor} at 127.0.0.1:")
    assert "may open up to 12 connections per process" in message.msg
    assert "'default': pool_size 4 + pool_max_overflow 2" in message.msg
    assert "With 1000 worker processes (settings.DATAFLOW_WORKER_PROCESSES)" in message.msg
    assert f"12 x 1000 = 12000, more than the {accepted} the server accepts" in message.msg
    assert f"At most {accepted // 12} worker processes fit." in message.hint


@pytest.mark.usefixtures("server_vendor")
def test_w004_counts_web_concurrency_when_the_setting_is_absent(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "5000")
    [message] = server_checks("default")
    assert "With 5000 worker processes (the WEB_CONCURRENCY environment variable)" in message.msg


@pytest.mark.usefixtures("server_vendor", "no_web_concurrency")
def test_w004_when_a_single_process_does_not_fit(wrapper_for, server_url, vendor):
    huge = DataFlowConfig(database_url=server_url(), pool_size=5000, pool_max_overflow=0)
    wrapper = wrapper_for(huge.as_database())
    [message] = checks.budget_messages({"cfg": huge.pool_options}, wrapper, 1, "test")
    assert "Not even one process fits." in message.hint
    assert wrapper.connection is None, "the connection asked is returned to its pool"


@pytest.mark.usefixtures("server_vendor", "no_web_concurrency")
def test_w004_not_raised_when_the_pools_fit(settings):
    settings.DATAFLOW_WORKER_PROCESSES = 2
    assert server_checks("default", "other") == []
    del settings.DATAFLOW_WORKER_PROCESSES
    assert server_checks("default", "other") == []


def test_w004_not_raised_for_sqlite_or_without_databases(settings, vendor):
    settings.DATAFLOW_WORKER_PROCESSES = 1000
    assert checks.check_server_limits(databases=None) == []
    if vendor == "sqlite":
        assert server_checks("default", "other") == []


@pytest.mark.usefixtures("server_vendor")
def test_an_unreachable_server_is_skipped_by_the_server_checks(wrapper_for, server_url):
    url = server_url().replace(":" + str(connections["default"].settings_dict["PORT"]), ":1", 1)
    config = DataFlowConfig(database_url=url, pool_recycle=None, pool_size=100000)
    wrapper = wrapper_for(config.as_database(OPTIONS={"connect_timeout": 2}))
    assert checks.budget_messages({"cfg": config.pool_options}, wrapper, 1, "test") == []
    assert checks.recycle_messages("cfg", config.pool_options, wrapper) == []


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
@pytest.mark.usefixtures("mysql_only")
def test_the_server_checks_leave_no_connection_checked_out_after_a_request():
    # Asking "is a connection open?" must not read wrapper.connection, which takes a
    # parked connection back: the check must leave it parked, not checked out.
    connection = connections["default"]
    connection.close_if_unusable_or_obsolete()  # request_started
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close_if_unusable_or_obsolete()  # request_finished: parked
    assert connection._dataflow_parked
    server_checks("default")
    assert connection.dataflow_pool.get_stats()["checked_out"] == 0
