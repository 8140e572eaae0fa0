"""Overload: 200 threads at once against a pool of 5 + 5 overflow with a 1 s timeout,
each request holding its connection 0.1 s, so about half of them cannot be served in
time.

The promise: no deadlock (every thread finishes); every request either succeeds or
gets PoolTimeout after the timeout, ± 10 %; waiters are served first come, first served
(nobody still waits while someone who queued after them is served), so the longest wait
of a served request stays within the timeout; and once the burst is over the pool
shrinks back to pool_size.

"First come" is the order of the pool's wait queue, read from the pool itself while the
burst runs: a thread's own clock reading before it calls the pool says little when 200
threads contend for two CPUs and the GIL.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import connections

from django_dataflow import PoolTimeout
from django_dataflow.backends.postgresql.server import application_name
from django_dataflow.pool import registry
from django_dataflow.signals import pool_timeout
from tests.integration.reliability import sessions
from tests.integration.reliability.counterapp.ledger import (
    check_ledger,
    record_request,
    reset_counter,
)
from tests.integration.reliability.workload import wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("db_access")]

ALIAS = "pg_overload"
THREADS = 200
HOLD = 0.1
# Waiters handed a connection together (a batch of returns) may wake in any order.
WAKE_SLACK = 0.05

# thread id -> seconds the pool says it waited before PoolTimeout (its pool_timeout
# signal): from the checkout call to leaving the queue, on the pool's clock. The
# borrower's own measure adds the unwinding of the error (and, on a busy machine, the
# time 100 threads timing out together take to be scheduled).
pool_waits: dict[int, float] = {}


def _note_pool_wait(sender, waited: float, **kwargs) -> None:
    pool_waits[threading.get_ident()] = waited


@dataclass
class Borrow:
    request_id: str
    thread: int
    arrived: float
    answered: float = 0.0  # got a connection, or PoolTimeout
    timed_out: bool = False
    error: BaseException | None = None
    pool_waited: float = 0.0  # the pool's own measure of a wait that timed out

    @property
    def waited(self) -> float:
        return self.answered - self.arrived


def borrow(counter: str, number: int, start: threading.Barrier, results: list) -> None:
    start.wait()
    request_started.send(sender=None)
    result = Borrow(f"{counter}:{number}", threading.get_ident(), time.monotonic())
    try:
        connections[ALIAS].ensure_connection()
        result.answered = time.monotonic()
        record_request(counter, result.request_id, ALIAS)
        time.sleep(HOLD)
    except PoolTimeout:
        result.answered = time.monotonic()
        result.timed_out = True
        result.pool_waited = pool_waits.pop(threading.get_ident())
    except Exception as error:
        result.error = error
    finally:
        request_finished.send(sender=None)
        connections.close_all()
    results.append(result)


class QueueWatcher(threading.Thread):
    """Reads the pool's wait queue every 2 ms, under the pool's lock, and keeps the
    order in which waiters joined it and when each started waiting (pool clock)."""

    def __init__(self, pool) -> None:
        super().__init__(name="queue-watcher", daemon=True)
        self.pool = pool
        self.order: list[int] = []
        self.since: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with self.pool._lock:  # the engine's own queue, not an estimate
                queue = [(waiter.thread.ident, waiter.since) for waiter in self.pool._waiters]
            for ident, since in queue:  # the queue grows at its tail only
                if ident not in self.since:
                    self.since[ident] = since
                    self.order.append(ident)
            time.sleep(0.002)


def fifo_violations(results: list[Borrow], queue: QueueWatcher) -> list[tuple[str, str]]:
    """Pairs (ahead, behind) in queue order where ``behind`` was served while ``ahead``
    still waited: ``ahead`` timed out after ``behind`` got its connection, or was served
    clearly after it."""
    by_thread = {r.thread: r for r in results}
    ordered = [by_thread[ident] for ident in queue.order if ident in by_thread]
    violations = []
    for position, ahead in enumerate(ordered):
        for behind in ordered[position + 1 :]:
            if behind.timed_out:
                continue
            if ahead.timed_out:
                left_queue = queue.since[ahead.thread] + ahead.pool_waited
                late = left_queue > behind.answered  # behind's wake-up is never early
            else:
                late = ahead.answered > behind.answered + WAKE_SLACK
            if late:
                violations.append((ahead.request_id, behind.request_id))
    return violations


def test_200_threads_on_5_plus_5_connections_get_a_connection_or_a_timely_timeout(
    dedicated_postgres, run_databases, figures
):
    options = settings.DATABASES[ALIAS]["POOL"]
    timeout, pool_size = options["pool_timeout"], options["pool_size"]
    counter = "overload"
    reset_counter(counter, ALIAS)
    (pool,) = registry.all_pools(ALIAS)
    results: list[Borrow] = []
    start = threading.Barrier(THREADS)
    threads = [
        threading.Thread(target=borrow, args=(counter, n, start, results), name=f"borrower-{n}")
        for n in range(THREADS)
    ]
    watcher = QueueWatcher(pool)
    watcher.start()
    pool_timeout.connect(_note_pool_wait, dispatch_uid="reliability-overload")
    try:
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        pool_timeout.disconnect(dispatch_uid="reliability-overload")
        watcher.done.set()
    assert not [t.name for t in threads if t.is_alive()], "deadlock: threads never finished"
    burst_over = time.monotonic()
    peak = pool.get_stats()["total"]
    shrink = wait_until(lambda: pool.get_stats()["total"] == pool_size, timeout=10)

    errors = [r for r in results if r.error is not None]
    timeouts = [r for r in results if r.timed_out]
    served = [r for r in results if not r.timed_out and r.error is None]
    timeout_waits = sorted(r.pool_waited for r in timeouts)
    observed = sorted(r.waited for r in timeouts)
    max_served_wait = max(r.waited for r in served)
    violations = fifo_violations(results, watcher)
    ours = application_name("django-dataflow", ALIAS, os.getpid())
    server_sessions = sessions.sessions_on(dedicated_postgres, run_databases, ours)
    figures.record(
        "overload 200 threads on 5+5",
        served=len(served),
        timed_out=len(timeouts),
        other_errors=len(errors),
        burst_seconds=burst_over - began,
        waiters_seen_in_queue_order=len(watcher.order),
        timeout_wait_min=timeout_waits[0] if timeouts else None,
        timeout_wait_max=timeout_waits[-1] if timeouts else None,
        timeout_seen_by_borrower_max=observed[-1] if timeouts else None,
        served_wait_max=max_served_wait,
        fifo_violations=len(violations),
        peak_connections=peak,
        shrink_to_pool_size_seconds=shrink,
        server_sessions_after=len(server_sessions),
    )

    assert len(results) == THREADS
    assert not errors, [repr(r.error) for r in errors]
    assert served and timeouts, "the burst should both serve and time out requests"
    assert timeout * 0.9 <= timeout_waits[0] and timeout_waits[-1] <= timeout * 1.1
    assert observed[-1] <= timeout + 1.0, "a borrower got its PoolTimeout long after the pool"
    assert max_served_wait <= timeout * 1.1
    assert len(watcher.order) >= THREADS - pool.max_connections - 10
    assert not violations, violations[:5]
    assert peak <= pool.max_connections
    stats = pool.get_stats()
    assert stats["checked_out"] == stats["wait_queue"] == 0
    assert stats["timeouts"] == len(timeouts)
    assert len(server_sessions) == pool_size
    check_ledger(counter, ALIAS, [r.request_id for r in served])
