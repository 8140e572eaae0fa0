"""``pool_stats --server``: the database's own view shows the workers' pooled sessions."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from django_dataflow.backends.postgresql.server import application_name

pytestmark = pytest.mark.django_db(transaction=True)


def groups_of(result) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["server"]["default"]["groups"]


def test_server_view_groups_the_pooled_sessions_by_worker_process(
    server_vendor, spawn_worker, pool_stats
):
    first = spawn_worker(hold=2)
    second = spawn_worker(hold=1)

    groups = groups_of(pool_stats("--server", "--format", "json", "--database", "default"))

    ours = {group["pid"]: group for group in groups if group["alias"] == "default"}
    # The holders' connections: the one the main thread parked after its requests is
    # taken by a holder before the pool opens another (sessions follow concurrency).
    assert ours[first.pid]["sessions"] == 2
    assert ours[second.pid]["sessions"] == 1
    # The holders ran a query and now sit idle with the connection checked out.
    assert set(ours[first.pid]["states"]) <= {"idle", "active"}
    assert "idle" in ours[first.pid]["longest_seconds"]


def test_server_view_reports_max_connections_and_headroom(server_vendor, spawn_worker, pool_stats):
    spawn_worker(hold=1)

    result = pool_stats("--server", "--format", "json")

    server = json.loads(result.stdout)["server"]["default"]
    assert server["max_connections"] > 0
    assert server["in_use"] >= 2
    assert server["headroom"] == (
        server["max_connections"] - server["reserved_connections"] - server["in_use"]
    )


def test_server_table_names_the_state_and_its_duration(server_vendor, spawn_worker, pool_stats):
    worker = spawn_worker(hold=1)

    result = pool_stats("--server")

    assert result.returncode == 0, result.stderr
    assert "max_connections" in result.stdout and "headroom" in result.stdout
    line = next(
        line
        for line in result.stdout.splitlines()
        if f" {worker.pid} " in line and "idle (longest" in line
    )
    assert "default" in line


def test_idle_in_transaction_is_told_apart(server_vendor, pool_stats):
    # This test's own connection sits in an open transaction while the command looks.
    connection.set_autocommit(False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM testapp_item FOR UPDATE")
        groups = groups_of(pool_stats("--server", "--format", "json"))
    finally:
        connection.rollback()
        connection.set_autocommit(True)
    states = {state for group in groups for state in group["states"]}
    assert "idle in transaction" in states


def test_an_unreachable_server_exits_2_without_showing_the_password(
    server_vendor, spawn_worker, pool_stats
):
    spawn_worker()
    variable = "POSTGRES" if server_vendor == "postgresql" else "MYSQL"
    env = {f"{variable}_PORT": "1", f"{variable}_PASSWORD": "s3cret-pw"}

    result = pool_stats("--server", env=env)

    assert result.returncode == 2
    assert "Could not query" in result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_server_on_sqlite_is_a_usage_error(vendor, pool_stats):
    if vendor != "sqlite":
        pytest.skip("about SQLite")

    result = pool_stats("--server", "--database", "default")

    assert result.returncode == 2
    assert "SQLite has no server" in result.stderr


def test_pooled_postgresql_sessions_carry_prefix_alias_and_pid(vendor, spawn_worker, pool_stats):
    if vendor != "postgresql":
        pytest.skip("application_name is PostgreSQL's")
    worker = spawn_worker(hold=1)

    groups = groups_of(pool_stats("--server", "--format", "json"))

    expected = application_name("django-dataflow", "default", worker.pid)
    assert any(g["application"] == expected and g["pid"] == worker.pid for g in groups)


def test_application_name_from_identify_connection_reaches_the_server(vendor):
    """The parameters identify_connection returns are what PostgreSQL shows."""
    if vendor != "postgresql":
        pytest.skip("application_name is PostgreSQL's")
    import psycopg

    from django_dataflow.backends.postgresql.server import identify_connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    named = identify_connection("postgresql", "a-very-long-alias-" * 4, params, pid=4194304)
    with psycopg.connect(**named) as raw:
        shown = raw.execute("SHOW application_name").fetchone()[0]
    assert shown == named["application_name"]
    assert shown.endswith(":4194304") and len(shown.encode()) <= 63
