"""Workload (c): requests that wait on an external call between two queries.

A request is ``SELECT 1``, 100 ms of waiting (``--c-sleep-ms``: an HTTP API, another
service), ``SELECT 1``, bracketed the way Django's handler brackets a view:
``close_if_unusable_or_obsolete()`` on the alias before and after (what
``request_started`` / ``request_finished`` do for it through ``close_old_connections``).
Pool 20 + 30 and ``pool_timeout`` ``--c-timeout`` (10 s). Two contenders, the same
engine: ``ours`` (``pool_scope="request"``, the default: the connection is held from the
first query to the end of the request) and ``ours+transaction`` (``pool_scope=
"transaction"``: it goes back after each autocommit query). Three variants, all requests
started together:

``threads-200`` / ``threads-50``
    200 (``--c-requests``) or 50 (``--c-inflight``) fresh threads, one request each,
    released by a barrier: a threaded WSGI server with that many requests in flight.
``asgi-200``
    200 asyncio tasks in one event loop, each inside its own ``ThreadSensitiveContext``
    (as Django's ``ASGIHandler`` wraps every request) doing ``await sync_to_async(q)()``,
    ``await asyncio.sleep(0.1)``, ``await sync_to_async(q)()`` with the default
    ``thread_sensitive=True``: each request's sync code runs on a thread of its own, as
    under a real ASGI server. (In a bare ``asyncio.run`` without the contexts,
    ``thread_sensitive=True`` would put every request on one thread, and
    ``thread_sensitive=False`` on the loop's few executor threads, each thread's
    connection then serving many requests: neither is what a server does.)

Each variant runs twice: ``cold``, from a closed pool, and ``warm``, on a pool whose 20
connections are open (20 threads each take one and hold it until all 20 do, as the
spike workload's prefill; then 0.3 s for any opening under way to end). Measured per
run: requests served, errors (``PoolTimeout`` among
them), p50/p99 latency, the most server sessions open at once during the run (a
sampler thread every 10 ms: PostgreSQL ``pg_stat_activity``, MariaDB
``information_schema.PROCESSLIST``, both for the bench database; SQLite has no server,
so the pool's own ``total`` connections from ``get_stats()`` stand in), the pool's most
connections lent at once, and its ``connections_created``.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

from benchmarks.machine import load_average, wait_for_quiet
from benchmarks.report_c import LABELS, summarize_c

C_KEYS = ("ours", "ours+transaction")


def build_c_contenders(
    vendors: list[str], keys: list[str] | None, shape: Any, params: dict[str, Any]
) -> list[Any]:
    """The (c) contenders: aliases of their own (``pgc_ours``, ``pgc_ours_transaction``)."""
    from benchmarks.contenders import VENDOR_PREFIX, build_contenders

    chosen = [k for k in C_KEYS if keys is None or k in keys]
    contenders = build_contenders(vendors, chosen, shape, params)
    for contender in contenders:
        contender.prefix = VENDOR_PREFIX[contender.vendor] + "c"
    return contenders


def _query(alias: str) -> None:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _edge(alias: str) -> None:
    """What request_started / request_finished do for the alias."""
    from django.db import connections

    connections[alias].close_if_unusable_or_obsolete()


def _close(alias: str) -> None:
    from django.db import connections

    connections[alias].close()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


class _Outcome:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def record(self, t0: float, error: BaseException | None) -> None:
        with self.lock:
            if error is None:
                self.latencies.append((time.perf_counter() - t0) * 1000.0)
            else:
                self.errors.append(_describe(error))


def threads_run(alias: str, requests: int, sleep_s: float) -> _Outcome:
    """``requests`` fresh threads released together, one request each."""
    outcome = _Outcome()
    barrier = threading.Barrier(requests, timeout=120)

    def worker() -> None:
        barrier.wait()
        t0 = time.perf_counter()
        error = None
        try:
            _edge(alias)
            try:
                _query(alias)
                time.sleep(sleep_s)
                _query(alias)
            finally:
                _edge(alias)
        except Exception as exc:
            error = exc
        outcome.record(t0, error)
        try:
            _close(alias)
        except Exception as exc:
            outcome.record(t0, exc)

    workers = [threading.Thread(target=worker, name=f"bench-c-{n}") for n in range(requests)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return outcome


def asgi_run(alias: str, requests: int, sleep_s: float) -> _Outcome:
    """``requests`` asyncio tasks, each in its own ThreadSensitiveContext (see above)."""
    from asgiref.sync import ThreadSensitiveContext, sync_to_async

    outcome = _Outcome()

    async def one() -> None:
        async with ThreadSensitiveContext():
            t0 = time.perf_counter()
            error = None
            try:
                await sync_to_async(_edge)(alias)
                try:
                    await sync_to_async(_query)(alias)
                    await asyncio.sleep(sleep_s)
                    await sync_to_async(_query)(alias)
                finally:
                    await sync_to_async(_edge)(alias)
            except Exception as exc:
                error = exc
            outcome.record(t0, error)
            try:
                await sync_to_async(_close)(alias)
            except Exception as exc:
                outcome.record(t0, exc)

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(requests)))

    runner = threading.Thread(target=lambda: asyncio.run(main()), name="bench-c-asgi")
    runner.start()
    runner.join()
    return outcome


class SessionSampler:
    """Every ``interval`` s: the server's sessions on the bench database (through the
    monitor's own connection, used by nobody else meanwhile) and the pool's figures."""

    def __init__(self, monitor: Any, alias: str, interval: float = 0.01) -> None:
        self.monitor, self.alias, self.interval = monitor, alias, interval
        self.peak = {"sessions": 0, "pool_total": 0, "checked_out": 0}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-c-sampler", daemon=True)

    def _pools(self) -> list[Any]:
        from django_dataflow.pool import registry

        return registry.all_pools(self.alias)

    def _loop(self) -> None:
        server = self.monitor.vendor != "sqlite"
        while not self._stop.is_set():
            stats = [p.get_stats() for p in self._pools()]
            figures = {
                "sessions": self.monitor.clients() if server else 0,
                "pool_total": sum(s["total"] for s in stats),
                "checked_out": sum(s["checked_out"] for s in stats),
            }
            if not server:
                figures["sessions"] = figures["pool_total"]
            for name, value in figures.items():
                self.peak[name] = max(self.peak[name], value)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def created(self) -> int:
        return sum(p.get_stats()["connections_created"] for p in self._pools())


def percentile(values: list[float], pct: float) -> float | None:
    from benchmarks.workloads import percentile as nearest_rank

    return nearest_rank(sorted(values), pct) if values else None


def prefill(alias: str, size: int) -> None:
    """Open ``size`` connections: ``size`` threads hold one each until all of them do."""
    hold = threading.Barrier(size, timeout=60)

    def worker() -> None:
        from django.db import connections

        try:
            with connections[alias].cursor() as cursor:  # an open cursor keeps it
                cursor.execute("SELECT 1")
                cursor.fetchone()
                hold.wait()
        finally:
            _edge(alias)
            _close(alias)

    workers = [threading.Thread(target=worker, name=f"bench-c-fill-{n}") for n in range(size)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    time.sleep(0.3)


def one_run(
    contender: Any, monitor: Any, style: str, requests: int, sleep_s: float, warm: int
) -> dict:
    """One variant, one contender, from a closed pool (``warm``: with that many
    connections opened first); the pool is closed again after."""
    from benchmarks.contenders import dispose

    dispose(contender)
    monitor.wait_until_no_clients()
    if warm:
        prefill(contender.alias, warm)
    play = asgi_run if style == "asgi" else threads_run
    began = time.perf_counter()
    with SessionSampler(monitor, contender.alias) as sampler:
        outcome = play(contender.alias, requests, sleep_s)
        wall = time.perf_counter() - began
        created = sampler.created()
        # Every request has ended and its thread closed its connection: nothing lent.
        lent_after = sum(p.get_stats()["checked_out"] for p in sampler._pools())
    dispose(contender)
    leftover = monitor.wait_until_no_clients()
    return {
        "requests": requests,
        "served": len(outcome.latencies),
        "errors": len(outcome.errors),
        "timeouts": sum("PoolTimeout" in e for e in outcome.errors),
        "first_error": outcome.errors[0] if outcome.errors else None,
        "p50_ms": percentile(outcome.latencies, 50),
        "p99_ms": percentile(outcome.latencies, 99),
        "max_ms": max(outcome.latencies, default=None),
        "wall_s": wall,
        "sessions_max": sampler.peak["sessions"],
        "pool_total_max": sampler.peak["pool_total"],
        "checked_out_max": sampler.peak["checked_out"],
        "samples": sampler.samples,
        "created": created,
        "lent_after": lent_after,
        "leftover": leftover,
    }


def variants(args: argparse.Namespace) -> dict[str, tuple[str, int, int]]:
    """name -> (style, requests at once, connections opened before)."""
    shapes = {}
    for phase, warm in (("cold", 0), ("warm", args.pool_size)):
        for style, requests in (
            ("threads", args.c_requests),
            ("threads", args.c_inflight),
            ("asgi", args.c_requests),
        ):
            shapes[f"{style}-{requests} {phase}"] = (style, requests, warm)
    return shapes


def run_c(
    contenders: list[Any], monitor: Any, args: argparse.Namespace, log: Any
) -> dict[str, Any]:
    """``--c-runs`` runs; in each, every variant for every contender, in alternating order."""
    live = [c for c in contenders if c.available]
    shapes = variants(args)
    runs: dict[str, list[dict[str, dict[str, Any]]]] = {v: [] for v in shapes}
    loads: list[dict[str, Any]] = []
    for number in range(args.c_runs):
        busy = wait_for_quiet(args, log)
        order = live if number % 2 == 0 else list(reversed(live))
        for variant, (style, requests, warm) in shapes.items():
            current: dict[str, dict[str, Any]] = {}
            for contender in order:
                if not contender.available:
                    continue
                try:
                    current[contender.key] = one_run(
                        contender, monitor, style, requests, args.c_sleep_ms / 1000.0, warm
                    )
                except Exception as exc:
                    contender.unavailable = f"failed in (c): {_describe(exc)}"
            runs[variant].append(current)
            log(
                f"  (c/{variant}) run {number + 1}/{args.c_runs} (load {load_average()}): "
                + ", ".join(
                    f"{LABELS[k]} {v['served']}/{v['requests']} p99 {v['p99_ms'] or 0:.0f}ms "
                    f"sessions {v['sessions_max']} created {v['created']}"
                    for k, v in current.items()
                )
            )
        loads.append({"load_1min": load_average(), "cpu_busy_before": busy})
    keys = [c.key for c in contenders]
    return {
        "runs": runs,
        "machine_load": loads,
        "summary": {v: summarize_c(runs[v], keys) for v in shapes},
        "contenders": [
            {"key": c.key, "alias": c.alias, "unavailable": c.unavailable, "settings": c.settings}
            for c in contenders
        ],
    }
