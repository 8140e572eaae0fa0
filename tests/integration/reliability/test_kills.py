"""Server-side kills of pooled connections: ``pg_terminate_backend`` on PostgreSQL,
``KILL`` on MariaDB, of every connection of a pool at once.

* Idle connections: with pre-ping, no request sees an error; each dead connection is
  found by its ping and replaced.
* Connections in use (a request between two queries of its transaction, or in the
  middle of one): each borrower gets one clean error, its transaction is not applied,
  and its next request succeeds.
* Either way the pool's counts stay right: nothing checked out, nothing waiting, no more
  connections than the pool's size, every discarded connection counted once.
* An idle connection killed within pool_pre_ping_bypass of its return is not lent dead:
  its socket is readable (the server's goodbye), which makes the pool ping it anyway.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.core.signals import request_finished, request_started
from django.db import OperationalError, connections, transaction
from django.db.models import F

from django_dataflow import PoolTimeout
from django_dataflow.pool import registry
from tests.integration.reliability import sessions
from tests.integration.reliability.counterapp.ledger import (
    SESSION_ID_SQL,
    check_ledger,
    reset_counter,
)
from tests.integration.reliability.counterapp.models import Counter, Hit
from tests.integration.reliability.workload import Load, error_kinds, run_request

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("db_access")]

POOL_SIZE = 5
VENDORS = pytest.mark.parametrize(
    ("alias", "server_fixture"),
    [("pg_kill", "dedicated_postgres"), ("maria_kill", "dedicated_mariadb")],
    ids=["postgresql", "mariadb"],
)
SLEEP_SQL = {"postgresql": "SELECT pg_sleep(%s)", "mysql": "SELECT SLEEP(%s)"}


def fill_the_pool(counter: str, alias: str) -> set[int]:
    """Open every connection of the pool (POOL_SIZE requests at once); return their
    server sessions, all idle again."""
    outcomes = []
    threads = [
        threading.Thread(
            target=lambda n=n: outcomes.append(
                run_request(counter, alias, f"{counter}:warm-{n}", hold=0.3)
            )
        )
        for n in range(POOL_SIZE)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(outcome.ok for outcome in outcomes), error_kinds(outcomes)
    opened = {outcome.session for outcome in outcomes}
    assert len(opened) == POOL_SIZE
    return opened


def pool_of(alias: str):
    (pool,) = registry.all_pools(alias)
    return pool


def assert_counts_are_right(pool) -> dict:
    stats = pool.get_stats()
    assert stats["checked_out"] == stats["wait_queue"] == 0
    assert stats["total"] == stats["idle_connections"] <= POOL_SIZE
    assert stats["connections_created"] - stats["connections_closed"] == stats["total"]
    return stats


@VENDORS
def test_killing_every_idle_connection_costs_no_request_an_error(
    alias, server_fixture, request, figures
):
    server = request.getfixturevalue(server_fixture)
    counter = f"kill-idle-{alias}"
    reset_counter(counter, alias)
    warm = fill_the_pool(counter, alias)

    sessions.kill_and_wait(server, warm)
    time.sleep(0.6)  # idle beyond pool_pre_ping_bypass (0.5 s): the ping is due
    load = Load(counter, alias, clients=POOL_SIZE).start()
    time.sleep(1.0)
    load.stop()

    failed = [outcome for outcome in load.outcomes if not outcome.ok]
    assert not failed, error_kinds(failed)
    assert not {outcome.session for outcome in load.outcomes} & warm
    stats = assert_counts_are_right(pool_of(alias))
    assert stats["pre_ping_failures"] == POOL_SIZE
    assert stats["invalidated_by_reason"] == {"pre_ping": POOL_SIZE}
    figures.record(
        f"kill idle {server.name}",
        killed=len(warm),
        requests_after=len(load.outcomes),
        errors=len(failed),
        pre_ping_failures=stats["pre_ping_failures"],
        open_after=stats["total"],
    )
    check_ledger(
        counter, alias, [f"{counter}:warm-{n}" for n in range(POOL_SIZE)] + load.succeeded()
    )


def hold_and_fail(counter, alias, number, ready, go, mid_query, results):
    """A request that holds its connection in a transaction while it is killed, then
    three more requests; ``results[number]`` is the list of their errors (None: ok)."""
    vendor = connections[alias].vendor
    errors: list[BaseException | None] = []
    request_started.send(sender=None)
    try:
        with transaction.atomic(using=alias):
            with connections[alias].cursor() as cursor:
                cursor.execute(SESSION_ID_SQL[vendor])
                ready[number] = int(cursor.fetchone()[0])
                if mid_query:  # killed in the middle of this query
                    cursor.execute(SLEEP_SQL[vendor], [5])
                else:  # killed between two statements of the transaction
                    go.wait(10)
            # (The counter's row lock is taken last: the borrowers do not queue on it.)
            Counter.objects.using(alias).filter(name=counter).update(value=F("value") + 1)
            Hit.objects.using(alias).create(request_id=f"{counter}:held-{number}", counter=counter)
        errors.append(None)
    except Exception as error:
        errors.append(error)
    finally:
        request_finished.send(sender=None)
    for attempt in range(3):
        outcome = run_request(counter, alias, f"{counter}:after-{number}-{attempt}")
        errors.append(outcome.error)
    connections.close_all()
    results[number] = errors


@VENDORS
@pytest.mark.parametrize("mid_query", [False, True], ids=["between-queries", "mid-query"])
def test_killing_connections_in_use_gives_each_borrower_one_clean_error(
    alias, server_fixture, mid_query, request, figures
):
    server = request.getfixturevalue(server_fixture)
    counter = f"kill-used-{alias}-{mid_query}"
    reset_counter(counter, alias)
    ready: dict[int, int] = {}
    results: dict[int, list] = {}
    go = threading.Event()
    threads = [
        threading.Thread(
            target=hold_and_fail, args=(counter, alias, n, ready, go, mid_query, results)
        )
        for n in range(POOL_SIZE)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(ready) < POOL_SIZE:
        assert time.monotonic() < deadline, "the borrowers never held their connections"
        time.sleep(0.01)
    time.sleep(0.2)  # the mid-query borrowers are inside their query now
    killed = time.monotonic()
    sessions.kill_and_wait(server, ready.values())
    go.set()
    for thread in threads:
        thread.join(30)
    kill_to_errors = time.monotonic() - killed

    first_errors = [results[n][0] for n in range(POOL_SIZE)]
    later = [error for n in range(POOL_SIZE) for error in results[n][1:]]
    assert all(isinstance(error, OperationalError) for error in first_errors), first_errors
    assert not any(isinstance(error, PoolTimeout) for error in first_errors)
    assert later == [None] * len(later), [str(error) for error in later if error]
    stats = assert_counts_are_right(pool_of(alias))
    assert stats["invalidated_by_reason"].get("disconnect") == POOL_SIZE, stats[
        "invalidated_by_reason"
    ]
    figures.record(
        f"kill in use {server.name} {'mid-query' if mid_query else 'between queries'}",
        killed=len(ready),
        errors_per_borrower=sorted({sum(e is not None for e in results[n]) for n in results}),
        error=f"{type(first_errors[0]).__name__}: {str(first_errors[0]).splitlines()[0]}",
        later_requests_ok=len(later),
        seconds_until_all_done=kill_to_errors,
        open_after=stats["total"],
    )
    succeeded = [f"{counter}:after-{n}-{a}" for n in range(POOL_SIZE) for a in range(3)]
    check_ledger(counter, alias, succeeded)


@VENDORS
def test_a_connection_killed_right_after_its_return_is_not_lent_dead(
    alias, server_fixture, request, figures
):
    """Killed less than pool_pre_ping_bypass (0.5 s) after its last use, an idle
    connection is lent without a ping. Its socket already says it is dead, though (the
    server sent its goodbye, or closed it), and looking costs no round trip."""
    server = request.getfixturevalue(server_fixture)
    counter = f"kill-fresh-{alias}"
    reset_counter(counter, alias)
    first = run_request(counter, alias, f"{counter}:0")
    assert first.ok

    sessions.kill_and_wait(server, [first.session])
    since_return = time.monotonic() - first.finished
    second = run_request(counter, alias, f"{counter}:1")

    figures.record(
        f"kill within pre-ping bypass {server.name}",
        seconds_since_return=since_return,
        error=second.error_text or None,
    )
    if since_return >= 0.5:
        pytest.skip(f"the kill took {since_return:.2f}s: past the bypass window, pinged anyway")
    assert second.ok, second.error_text
