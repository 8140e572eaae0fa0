"""PgBouncer (Debian's package) in transaction mode in front of the dedicated PostgreSQL.

* The PostgreSQL tests of our suite pass through it with the documented settings
  (``behind_transaction_pooler``, ``DISABLE_SERVER_SIDE_CURSORS``): tests/dbsettings/
  pgbouncer.py, run in a process of its own.
* What breaks without those settings, shown rather than told: a server-side cursor and
  a prepared statement live in one server session, and the next transaction of the same
  client may run in another.
* Killing PgBouncer's server sessions under load: only the transactions in flight fail;
  the ledger holds exactly the successful requests.
* ``pool_stats --server`` pointed at PgBouncer's admin console reads its SHOW POOLS.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connections

from django_dataflow.pool import registry
from tests.integration.reliability import sessions
from tests.integration.reliability.counterapp.ledger import check_ledger, reset_counter
from tests.integration.reliability.counterapp.models import Hit
from tests.integration.reliability.pgbouncer_plugin import NOT_APPLICABLE
from tests.integration.reliability.webserver import ROOT
from tests.integration.reliability.workload import Load, error_kinds

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("pgbouncer", "db_access")]

SUITE = [
    "tests",
    "-m",
    "not unit",
    "--ignore=tests/integration/django_suite",
    "--ignore=tests/routing",
    "--ignore=tests/integration/reliability",
    "--ignore=tests/packaging",  # the distributions do not depend on the database
]


def test_the_postgresql_tests_pass_through_pgbouncer(figures):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p",
         "tests.integration.reliability.pgbouncer_plugin",
         "--ds=tests.dbsettings.pgbouncer", *SUITE],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        capture_output=True,
        text=True,
        timeout=400,
    )  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    counts = {
        kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)
    }
    skipped = sum(
        int(n) for n in re.findall(r"SKIPPED \[(\d+)\].*behind PgBouncer:", result.stdout)
    )
    figures.record(
        "postgresql tests through pgbouncer",
        seconds=time.monotonic() - started,
        **counts,
        skipped_as_not_applicable=skipped,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert counts.get("passed", 0) > 50
    # Every test the plugin names still exists (a renamed one would run unannounced).
    assert skipped == len(NOT_APPLICABLE), f"{skipped} skipped of {len(NOT_APPLICABLE)} listed"


@contextlib.contextmanager
def another_client_in_a_transaction() -> Iterator[None]:
    """Another PgBouncer client holding a server session in an open transaction: the
    session PgBouncer hands out first (the one used last)."""
    with psycopg.connect(
        host="127.0.0.1",
        port=connections["bouncer"].settings_dict["PORT"],
        user="postgres",
        dbname=settings.RUN_DATABASE,
    ) as other:
        other.execute("SELECT 1")  # BEGIN; SELECT 1: linked to a server session now
        yield
        other.rollback()


def seed_hits(counter: str, count: int) -> None:
    Hit.objects.using("bouncer").filter(counter=counter).delete()
    Hit.objects.using("bouncer").bulk_create(
        Hit(request_id=f"{counter}:{n:04}", counter=counter) for n in range(count)
    )
    connections["bouncer"].close()


@pytest.mark.parametrize(
    ("alias", "breaks"), [("bouncer_cursors", True), ("bouncer", False)],
    ids=["server-side-cursors-on", "documented-settings"],
)  # fmt: skip
def test_server_side_cursors_break_behind_a_transaction_pooler(alias, breaks, figures):
    counter = "cursor"
    seed_hits(counter, 300)
    rows = Hit.objects.using(alias).filter(counter=counter).order_by("pk").iterator(chunk_size=100)
    assert next(rows).request_id == f"{counter}:0000"  # DECLARE ... WITH HOLD; FETCH 100
    with another_client_in_a_transaction():
        if breaks:
            # Django's cursor_iter closes the cursor on the way out, and that CLOSE fails
            # too: the error reaches the caller as psycopg's own, not Django's.
            with pytest.raises((DatabaseError, psycopg.Error), match="does not exist") as error:
                list(rows)
            figures.record(
                "pgbouncer server-side cursor",
                error=f"{type(error.value).__name__}: {str(error.value).splitlines()[0]}",
            )
        else:
            assert len(list(rows)) == 299
    connections[alias].close()


@pytest.mark.parametrize(
    ("alias", "breaks"), [("bouncer_prepared", True), ("bouncer", False)],
    ids=["statement-cache-on", "documented-settings"],
)  # fmt: skip
def test_prepared_statements_break_behind_a_transaction_pooler(alias, breaks, figures):
    wrapper = connections[alias]

    def run() -> int:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM counterapp_hit WHERE counter = %s", ["none"])
            return cursor.fetchone()[0]

    for _ in range(8):  # psycopg prepares a query once it ran prepare_threshold (5) times
        run()
    with another_client_in_a_transaction():
        if breaks:
            with pytest.raises(DatabaseError, match=r"prepared statement \S+ does not exist") as e:
                run()
            figures.record(
                "pgbouncer prepared statement",
                error=f"{type(e.value).__name__}: {str(e.value).splitlines()[0]}",
            )
        else:
            assert run() == 0
    wrapper.close()


def test_killing_pgbouncers_server_sessions_fails_only_the_transactions_in_flight(
    dedicated_postgres, figures
):
    counter = "bouncer-kill"
    reset_counter(counter, "bouncer")
    load = Load(counter, "bouncer", clients=8).start()
    time.sleep(1.0)
    server_sessions = sessions.sessions_on(dedicated_postgres, settings.RUN_DATABASE)
    kill_started = time.monotonic()
    sessions.kill_and_wait(dedicated_postgres, server_sessions)
    killed = time.monotonic()
    time.sleep(1.5)
    load.stop()

    failed = [o for o in load.outcomes if not o.ok]
    late = [o for o in failed if o.started > killed]
    figures.record(
        "pgbouncer server sessions killed under load",
        server_sessions_killed=len(server_sessions),
        requests=len(load.outcomes),
        failed=len(failed),
        failed_issued_after_the_kill=len(late),
        errors=error_kinds(load.outcomes),
    )
    assert server_sessions
    assert all(o.started < killed and o.finished > kill_started for o in failed), error_kinds(late)
    (pool,) = registry.all_pools("bouncer")
    stats = pool.get_stats()
    assert stats["checked_out"] == stats["wait_queue"] == 0
    assert stats["total"] == stats["idle_connections"] <= pool.max_connections
    ledger = check_ledger(counter, "bouncer", load.succeeded(), in_doubt=load.in_doubt())
    figures.record(
        "pgbouncer server sessions killed under load",
        commits_in_doubt=len(load.in_doubt()),
        of_which_applied=ledger.applied_in_doubt,
    )


def test_pool_stats_server_reads_show_pools_on_pgbouncers_admin_console(figures):
    counter = "bouncer-stats"
    reset_counter(counter, "bouncer")
    Load(counter, "bouncer", clients=3).start().stop()  # a few client connections
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.reliability.settings",
        "DATAFLOW_RELIABILITY_DATABASE": settings.RUN_DATABASE,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "django", "pool_stats", "--server", "--database", "pgbouncer"]
    as_json = subprocess.run(
        [*command, "--format", "json"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    as_table = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    assert as_json.returncode == 0, as_json.stderr
    view = json.loads(as_json.stdout)["server"]["pgbouncer"]
    pools = {(pool["database"], pool["user"]): pool for pool in view["pools"]}
    ours = pools[(settings.RUN_DATABASE, "postgres")]
    (pool,) = registry.all_pools("bouncer")
    assert view["vendor"] == "pgbouncer"
    assert view["config"]["pool_mode"] == "transaction"
    assert ours["cl_active"] >= pool.get_stats()["total"] >= 1  # our idle pooled clients
    assert ours["cl_waiting"] == 0
    assert as_table.returncode == 0, as_table.stderr
    assert "PgBouncer" in as_table.stdout and "CL_ACTIVE" in as_table.stdout
    assert settings.RUN_DATABASE in as_table.stdout
    figures.record("pool_stats --server on pgbouncer", table=as_table.stdout.split("\n\n")[-1])
