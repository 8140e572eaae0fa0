"""``pool_stats --server`` on PgBouncer's admin console, without a PgBouncer: which
aliases are the console, and how SHOW POOLS is shown. A real PgBouncer answers in
tests/integration/reliability/test_pgbouncer.py."""

from __future__ import annotations

from django_dataflow.monitoring.pgbouncer import PgBouncerView, is_admin_console


def view() -> PgBouncerView:
    pool = {
        "database": "mysite",
        "user": "app",
        "cl_active": 3,
        "cl_waiting": 1,
        "sv_active": 2,
        "sv_idle": 5,
        "sv_used": 0,
        "sv_tested": 0,
        "sv_login": 0,
        "maxwait": 1.25,
        "pool_mode": "transaction",
    }
    config = {"pool_mode": "transaction", "default_pool_size": "20"}
    return PgBouncerView("pgbouncer", "127.0.0.1:6432", "PgBouncer 1.18.0", [pool], config)


def test_an_alias_named_pgbouncer_is_the_admin_console():
    assert is_admin_console({"NAME": "pgbouncer"})
    assert not is_admin_console({"NAME": "mysite"})
    assert not is_admin_console({})


def test_the_table_shows_show_pools_in_pgbouncers_own_words():
    text = view().table()

    header, rows = text.split("\n\n")
    assert header == (
        "PgBouncer 1.18.0 at 127.0.0.1:6432 (alias 'pgbouncer'): "
        "pool_mode transaction, default_pool_size 20"
    )
    columns, row = rows.splitlines()
    assert columns.split() == [
        "DATABASE", "USER", "CL_ACTIVE", "CL_WAITING", "SV_ACTIVE", "SV_IDLE", "SV_USED",
        "SV_TESTED", "SV_LOGIN", "MAXWAIT", "POOL_MODE",
    ]  # fmt: skip
    assert row.split() == [
        "mysite",
        "app",
        "3",
        "1",
        "2",
        "5",
        "0",
        "0",
        "0",
        "1.25s",
        "transaction",
    ]


def test_no_pools_yet_is_said_plainly():
    empty = view()
    empty.pools = []

    assert empty.table().endswith("No pools: no client has connected through PgBouncer yet.")


def test_json_lists_the_pools():
    document = view().to_json()

    assert sorted(document) == ["address", "config", "pools", "vendor", "version"]
    assert document["vendor"] == "pgbouncer"
    assert document["pools"][0]["cl_waiting"] == 1
    assert document["config"]["pool_mode"] == "transaction"
