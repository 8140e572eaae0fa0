"""A database restart under load: 20 threads keep issuing requests while the dedicated
PostgreSQL (and, separately, MariaDB) is stopped, kept down for a second and started.

The promise, with pre-ping on:

* every request issued after the server accepts connections again succeeds, and the
  pool is serving again within 2 s of that moment;
* a request made during the outage fails fast with a clear error (the driver's
  connection error, not a PoolTimeout after the full pool_timeout);
* the pool's counts are right afterwards and the ledger holds exactly the successful
  requests, plus, possibly, requests whose COMMIT was in flight when the server went
  away: their client saw an error, yet the server may have committed. No client can
  tell those apart; they are counted and reported.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings

from django_dataflow import PoolTimeout
from django_dataflow.pool import registry
from tests.integration.reliability.counterapp.ledger import check_ledger, reset_counter
from tests.integration.reliability.workload import Load, error_kinds

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("db_access")]

CLIENTS = 20
OUTAGE = 1.0  # seconds the server stays down
RECOVERY_PROMISE = 2.0  # seconds from "accepting connections" to serving again
AFTER = 3.0  # seconds of load after the server is back


def watch_until_accepting(server, result: dict[str, float]) -> threading.Thread:
    """Connect in a loop; note when the first connection succeeds."""

    def probe() -> None:
        while not server.accepting():
            time.sleep(0.01)
        result["ready"] = time.monotonic()

    thread = threading.Thread(target=probe, name="probe")
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("alias", "server_fixture"),
    [("pg_restart", "dedicated_postgres"), ("maria_restart", "dedicated_mariadb")],
    ids=["postgresql", "mariadb"],
)
def test_requests_recover_within_2s_of_a_restart_and_fail_fast_during_it(
    alias, server_fixture, request, figures
):
    server = request.getfixturevalue(server_fixture)
    counter = f"restart-{alias}"
    reset_counter(counter, alias)
    pool_timeout = settings.DATABASES[alias]["POOL"]["pool_timeout"]

    load = Load(counter, alias, CLIENTS).start()
    time.sleep(1.5)  # steady state first
    stopping = time.monotonic()
    server.stop()
    down = time.monotonic()
    time.sleep(OUTAGE)
    back: dict[str, float] = {}
    probe = watch_until_accepting(server, back)
    server.start(wait=False)
    probe.join(timeout=60)
    ready = back["ready"]
    time.sleep(AFTER)
    load.stop()

    outcomes = load.outcomes
    failed = [o for o in outcomes if not o.ok]
    issued_after = [o for o in outcomes if o.started >= ready]
    failed_after = [o for o in issued_after if not o.ok]
    served_again = min(o.finished for o in issued_after if o.ok)
    failure_times = sorted(o.duration for o in failed)
    pool_timeouts = [o for o in failed if isinstance(o.error, PoolTimeout)]
    figures.record(
        f"restart {server.name}",
        requests=len(outcomes),
        failed=len(failed),
        failed_issued_before_stop=sum(1 for o in failed if o.started < stopping),
        failed_issued_during_outage=sum(1 for o in failed if stopping <= o.started < ready),
        failed_issued_after_ready=len(failed_after),
        stop_seconds=down - stopping,
        down_to_accepting_seconds=ready - down,
        recovery_seconds=served_again - ready,
        failure_seconds_median=failure_times[len(failure_times) // 2] if failed else None,
        failure_seconds_max=failure_times[-1] if failed else None,
        errors=error_kinds(outcomes),
    )

    assert failed, "no request failed: the outage was not observed"
    assert not failed_after, (
        f"requests issued after the restart failed: {error_kinds(failed_after)}"
    )
    assert served_again - ready <= RECOVERY_PROMISE
    assert not pool_timeouts, "a request waited for the full pool_timeout during the outage"
    # Failing fast: a refused connection takes milliseconds; the bound is a quarter of the
    # pool_timeout (a busy machine may stall a thread), the median a hundredth.
    assert failure_times[-1] < pool_timeout / 4, f"a failure took {failure_times[-1]:.2f}s"
    assert failure_times[len(failure_times) // 2] < pool_timeout / 100
    (pool,) = registry.all_pools(alias)
    stats = pool.get_stats()
    assert stats["checked_out"] == stats["wait_queue"] == 0
    assert stats["total"] == stats["idle_connections"] <= pool.max_connections
    ledger = check_ledger(counter, alias, load.succeeded(), in_doubt=load.in_doubt())
    figures.record(
        f"restart {server.name}",
        commits_in_doubt=len(load.in_doubt()),
        of_which_applied=ledger.applied_in_doubt,
    )
