"""Where the time goes in workload (b)'s cold burst: ``python benchmarks/cold_burst.py``.

Why it exists: (b)'s cold-pool p99 is the one speed target that has not held, and the
p99 of one 2000-request run is 20 requests. This tool shows which 20, and why, for
Django's native pool and ours on PostgreSQL, the same burst as ``run.py``'s (b): 50
threads, 2000 requests of ``SELECT 1`` + 1 ms of app work, pool 20 + 30, cold.

Per run and contender it prints requests/s, p50, p99 and the slowest 1 % of requests:
how many were a thread's first request, when they started, and (ours) how long they
waited inside the pool's ``checkout()``. With ``--verbose``: the pool's size over time
and, for ours, each background connect's start and duration. With ``--slowest N``: the
N slowest requests themselves (when each started, how long it took, how long it waited
in ``checkout()``, ours only, and which of its thread's requests it was, 0 for the
first).

It watches the pools from outside (a sampling thread) and times ``checkout()`` and the
connector's ``connect()`` by wrapping them for the run: diagnostics, not targets. The
targets are measured by ``run.py`` only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import bootstrap  # noqa: E402

THREADS = 50
REQUESTS = 2000
WORK_S = 0.001


class Timings:
    """Per-thread checkout waits and every background connect, while a run lasts."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.connects: list[tuple[float, float]] = []  # (started, seconds)

    def install(self) -> None:
        from django_dataflow.backends.connector import DjangoConnector
        from django_dataflow.pool.pool import ConnectionPool

        checkout, connect = ConnectionPool.checkout, DjangoConnector.connect
        timings = self

        def timed_checkout(pool: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return checkout(pool, *args, **kwargs)
            finally:
                timings.local.waited = time.perf_counter() - started

        def timed_connect(connector: Any) -> Any:
            started = time.perf_counter()
            try:
                return connect(connector)
            finally:
                timings.connects.append((started, time.perf_counter() - started))

        ConnectionPool.checkout = timed_checkout
        DjangoConnector.connect = timed_connect


def pool_size_now(alias: str, family: str) -> tuple[int, int]:
    """(connections the pool manages, borrowers waiting) right now."""
    from django.db import connections

    if family == "native":
        pool = type(connections[alias])._connection_pools.get(alias)
        stats = pool.get_stats() if pool is not None else {}
        return stats.get("pool_size", 0), stats.get("requests_waiting", 0)
    from django_dataflow.pool import registry

    for pool in registry.all_pools():
        if pool.name == alias:
            stats = pool.get_stats()
            return stats["total"], stats["wait_queue"]
    return 0, 0


def burst(contender: Any, timings: Timings, verbose: bool, slowest_shown: int) -> dict[str, float]:
    """One cold run; print its anatomy; return req/s and p99."""
    from django.db import connections

    from benchmarks.workloads import request_direct

    alias = contender.alias
    tickets = iter(range(REQUESTS))
    tickets_lock = threading.Lock()
    start = threading.Barrier(THREADS + 1)
    rows: list[tuple[float, float, float, int]] = []  # (start, ms, checkout ms, seq)
    rows_lock = threading.Lock()

    def next_ticket() -> bool:
        with tickets_lock:
            return next(tickets, None) is not None

    def worker() -> None:
        mine = []
        start.wait()
        seq = 0
        while next_ticket():
            timings.local.waited = 0.0
            began = time.perf_counter()
            request_direct(alias, WORK_S)
            mine.append(
                (began, (time.perf_counter() - began) * 1e3, timings.local.waited * 1e3, seq)
            )
            seq += 1
        connections[alias].close()
        with rows_lock:
            rows.extend(mine)

    samples: list[tuple[float, int, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            samples.append((time.perf_counter(), *pool_size_now(alias, contender.family)))

    sampler = threading.Thread(target=sample, daemon=True)
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for thread in (*workers, sampler):
        thread.start()
    timings.connects.clear()
    start.wait()
    t0 = time.perf_counter()
    for thread in workers:
        thread.join()
    done.set()
    sampler.join()

    latencies = sorted(ms for _, ms, _, _ in rows)
    wall = max(began + ms / 1e3 for began, ms, _, _ in rows) - t0
    p99 = latencies[int(len(latencies) * 0.99)]
    slowest = sorted(rows, key=lambda row: -row[1])[: len(rows) // 100]
    firsts = sum(1 for row in slowest if row[3] == 0)
    starts = [(row[0] - t0) * 1e3 for row in slowest]
    line = (
        f"  {contender.key:6} {len(rows) / wall:6.0f} req/s  p50 {latencies[len(rows) // 2]:5.1f}"
        f"  p99 {p99:6.1f} ms  slowest 1 %: {firsts} first requests, started "
        f"{min(starts):.0f}-{max(starts):.0f} ms"
    )
    if contender.family == "ours":
        line += f", checkout wait median {statistics.median(r[2] for r in slowest):.1f} ms"
    print(line)
    if slowest_shown:
        # start ms after the barrier / latency ms / checkout wait ms (ours) / n-th request
        listed = sorted(rows, key=lambda row: -row[1])[:slowest_shown]
        print(
            "    slowest (start/ms/waited/nth): "
            + " ".join(f"{(b - t0) * 1e3:.0f}/{ms:.0f}/{w:.0f}/{n}" for b, ms, w, n in listed)
        )
    if verbose:
        shown = " ".join(f"{(t - t0) * 1e3:.0f}:{n}/{w}" for t, n, w in samples[:24])
        print(f"    pool size/waiting by ms: {shown}")
        if contender.family == "ours" and timings.connects:
            durations = [d for _, d in timings.connects]
            print(
                f"    {len(durations)} connects, median {statistics.median(durations) * 1e3:.1f}"
                f" ms; first ones (start+ms): "
                + " ".join(f"{(s - t0) * 1e3:.0f}+{d * 1e3:.0f}" for s, d in timings.connects[:12])
            )
    return {"rps": len(rows) / wall, "p99": p99}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--slowest", type=int, default=0, metavar="N", help="list the N slowest requests"
    )
    args = parser.parse_args(argv)
    bootstrap.ensure_venv_and_reexec(sys.argv)

    from benchmarks.contenders import (
        PoolShape,
        build_contenders,
        databases_setting,
        dispose,
        probe,
    )
    from benchmarks.run import configure_django
    from benchmarks.servers import open_monitor, server_params

    contenders = build_contenders(
        ["postgresql"],
        ["native", "ours"],
        PoolShape(),
        {"postgresql": server_params("postgresql")},
    )
    # The observer creates the bench database if it is missing (a fresh machine).
    open_monitor("postgresql").close()
    configure_django(databases_setting(contenders), with_app=True)
    timings = Timings()
    timings.install()
    for contender in contenders:
        probe(contender)  # imports and first connects happen here, not in a run
        if not contender.available:
            print(f"{contender.key}: {contender.unavailable}")
            return 1
    results: dict[str, list[dict[str, float]]] = {c.key: [] for c in contenders}
    for run in range(1, args.runs + 1):
        print(f"run {run}")
        for contender in contenders:
            results[contender.key].append(burst(contender, timings, args.verbose, args.slowest))
            dispose(contender)
            time.sleep(0.5)
    ratios = [
        ours["p99"] / native["p99"]
        for ours, native in zip(results["ours"], results["native"], strict=True)
    ]
    print(
        f"p99 ours / native, median of {len(ratios)} runs: {statistics.median(ratios):.3f}"
        f" (per run: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
