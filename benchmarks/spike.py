"""Workload "spike": HikariCP's spike-demand test, on PostgreSQL behind a delaying proxy.

Every physical connect goes through ``delay_proxy.py`` and takes 150 ms more
(``--spike-delay-ms``); a request is ``SELECT pg_sleep(0.002)`` (``--spike-query-ms``);
the pool holds 5 connections and may grow to 50 (ours ``pool_size=5,
pool_max_overflow=45``, Django's native pool ``min_size=5, max_size=50``,
django-db-connection-pool ``POOL_SIZE=5, MAX_OVERFLOW=45``). A burst of 50 fresh threads
(``--spike-threads``), released together, each makes one request.

Five connections serve 50 requests of 2 ms in about 20 ms, far less than one 150 ms
connect: a pool that opens a connection per waiting borrower ends the burst with ~50
connections and no sooner. Measured per run:

- ``open_at_end``: the proxy's connections open at the instant the last thread finishes
  (accepted and not closed, connects still in their delay included): the pool's
  physical connections, counted the same way for every contender;
- ``burst_ms``: from the release of the threads to the end of the last request;
- ``opened``: connections the proxy accepted during the burst; ``open_after``: those open
  once every connect started in the burst has had its delay; ``server_sessions``: the
  bench database's backends in ``pg_stat_activity`` just after the burst (a connect
  still in its delay has none yet).

Before each burst the pool is brought to exactly its 5 connections: Django's native pool
opens its ``min_size`` itself (``pool.wait()``); for the others 5 threads each hold a
connection until all 5 hold one. After the burst the pool is closed, so every run starts the same.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from benchmarks.machine import load_average, wait_for_quiet

SPIKE_FAMILIES = ("ours", "native", "dbcp")
OPEN_AT_END_TARGET = 10  # HikariCP ends its spike test with 5-6, DBCP2 with 45


def spike_request(alias: str, sql: str, hold: threading.Barrier | None = None) -> None:
    """``request_direct`` with another query; with ``hold``, keep the connection until
    every thread of the barrier holds one."""
    from django.db import connections

    connection = connections[alias]
    connection.close_if_unusable_or_obsolete()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            cursor.fetchone()
        if hold is not None:
            hold.wait()
    finally:
        connection.close_if_unusable_or_obsolete()


def _threads(count: int, body: Any, name: str) -> list[str]:
    """Run ``body()`` in ``count`` fresh threads; each closes its Django connections
    after; return the errors."""
    from django.db import connections

    errors: list[str] = []

    def target() -> None:
        try:
            body()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
        finally:
            connections.close_all()

    workers = [threading.Thread(target=target, name=f"{name}-{n}") for n in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def prefill(contender: Any, size: int, sql: str, proxy: Any) -> int:
    """Bring the (closed) pool to ``size`` open connections; return how many are open."""
    from benchmarks.contenders import settle

    if contender.family == "native":
        # psycopg_pool opens its min_size connections itself; a borrower arriving while
        # it does would make it grow past them.
        from django.db import connections

        connections[contender.alias].pool.open()  # what Django's first connect does
        settle(contender)
    else:
        hold = threading.Barrier(size, timeout=60)
        _threads(size, lambda: spike_request(contender.alias, sql, hold), "spike-prefill")
    deadline = time.monotonic() + 10
    while proxy.stats()["delaying"] and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # let the pool's own bookkeeping settle
    return proxy.stats()["open"]


def pool_says(contender: Any) -> int | None:
    """The pool's own count of its connections, where it has one."""
    from django.db import connections

    try:
        if contender.family == "native":
            pool = type(connections[contender.alias])._connection_pools.get(contender.alias)
            return None if pool is None else pool.get_stats().get("pool_size")
        if contender.family == "dbcp":
            from dj_db_conn_pool.core import pool_container

            pool = pool_container.get(contender.alias)
            return None if pool is None else pool.checkedin() + pool.checkedout()
        if contender.family == "ours":
            from django_dataflow.pool import registry

            return sum(p.get_stats()["total"] for p in registry.all_pools(contender.alias))
    except Exception:
        return None
    return None


def spike_burst(
    contender: Any, proxy: Any, monitor: Any, threads: int, size: int, sql: str
) -> dict[str, Any]:
    """One burst on a pool holding ``size`` connections; the measurements of one run."""
    from benchmarks.contenders import dispose

    before = prefill(contender, size, sql, proxy)
    proxy.reset()
    start = threading.Barrier(threads + 1, timeout=60)
    lock = threading.Lock()
    left = [threads]
    ends: list[float] = []
    latencies: list[float] = []
    at_end: dict[str, Any] = {}

    def body() -> None:
        start.wait()
        t0 = time.perf_counter()
        try:
            spike_request(contender.alias, sql)
        finally:
            end = time.perf_counter()
            with lock:
                ends.append(end)
                latencies.append((end - t0) * 1000.0)
                left[0] -= 1
                last = left[0] == 0
            if last:  # the last of the burst: count the pool's connections now
                at_end.update(proxy.stats())
                at_end["pool_says"] = pool_says(contender)

    errors: list[str] = []
    runner = threading.Thread(
        target=lambda: errors.extend(_threads(threads, body, "spike")), name="spike-runner"
    )
    runner.start()
    start.wait()
    began = time.perf_counter()
    runner.join()
    server_sessions = monitor.clients()
    time.sleep(proxy.delay_ms / 1000.0 + 0.3)
    after = proxy.stats()
    dispose(contender)
    leftover = proxy.wait_until_idle()
    monitor.wait_until_no_clients()
    latencies.sort()
    return {
        "open_before": before,
        "open_at_end": at_end.get("open"),
        "delaying_at_end": at_end.get("delaying"),
        "pool_says_at_end": at_end.get("pool_says"),
        "burst_ms": (max(ends) - began) * 1000.0 if ends else None,
        "opened": after["accepted"],
        "peak_open": after["peak"],
        "open_after": after["open"],
        "server_sessions": server_sessions,
        "p50_ms": latencies[len(latencies) // 2] if latencies else None,
        "max_ms": latencies[-1] if latencies else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "leftover": leftover,
    }


def run_spike(
    contenders: list[Any], proxy: Any, monitor: Any, args: argparse.Namespace, log: Any
) -> dict[str, Any]:
    """``--spike-runs`` runs, every contender once per run, in alternating order."""
    from benchmarks.contenders import dispose
    from benchmarks.report import summarize_spike

    sql = f"SELECT pg_sleep({args.spike_query_ms / 1000.0})"
    live = [c for c in contenders if c.available]
    for contender in live:
        dispose(contender)
    proxy.wait_until_idle()
    runs: list[dict[str, dict[str, Any]]] = []
    loads: list[dict[str, Any]] = []
    for number in range(args.spike_runs):
        order = live if number % 2 == 0 else list(reversed(live))
        busy = wait_for_quiet(args, log)
        current: dict[str, dict[str, Any]] = {}
        for contender in order:
            if not contender.available:
                continue
            try:
                current[contender.key] = spike_burst(
                    contender, proxy, monitor, args.spike_threads, args.spike_size, sql
                )
            except Exception as exc:
                contender.unavailable = f"failed in (spike): {type(exc).__name__}: {exc}"[:200]
                dispose(contender)
                proxy.wait_until_idle()
        runs.append(current)
        loads.append({"load_1min": load_average(), "cpu_busy_before": busy})
        busy_text = "?" if busy is None else f"{busy:.0%}"
        log(
            f"  (spike) run {number + 1}/{args.spike_runs} "
            f"(cpu busy before {busy_text}, load {load_average()}): "
            + ", ".join(
                f"{k} open at end {v['open_at_end']} burst {v['burst_ms']:.0f}ms "
                f"opened {v['opened']}"
                for k, v in current.items()
            )
        )
    return {
        "runs": runs,
        "machine_load": loads,
        "summary": summarize_spike(runs, [c.key for c in contenders]),
    }
