"""The two workloads: (a) one thread, µs per request; (b) 50 threads, throughput and tails.

A "request" is what Django's WSGI handler does to the database around a view, minus
HTTP. Django ties connections to requests through ``close_old_connections``, which the
``request_started`` and ``request_finished`` signals run for every alias initialised in
the current thread: ``close_if_unusable_or_obsolete()`` keeps a persistent connection
(CONN_MAX_AGE=None) and closes one with CONN_MAX_AGE=0, which for a pool means a checkin.

Two ways to play a request, both on one alias only:

``request_direct`` (the default, used for the targets)
    ``close_if_unusable_or_obsolete()`` on the alias under test, the view
    (``connections[alias].cursor()``, ``SELECT 1``, ``fetchone``), then
    ``close_if_unusable_or_obsolete()`` again: exactly the database work the two signals
    do for that alias. The signals themselves also run ``reset_queries``,
    ``close_caches`` and a loop over *every* configured alias; with the benchmark's ~30
    aliases in one settings that loop costs more than a small site's would, and the same
    for every contender, which would only dilute the ratios.
``request_lifecycle``
    ``request_direct`` minus the query: the connection's way in and out alone, i.e.
    what pooling costs per request.
``request_signals``
    the real ``request_started.send()`` / ``request_finished.send()``, for reference.

Each measurement runs in a new thread that only ever touches the alias under test, so
no other contender's connection is initialised there and the signals' per-alias work is
only ever done for one contender.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import connections

from benchmarks.contenders import Contender, settle

_ENVIRON: dict[str, Any] = {}


def request_direct(alias: str, work_s: float = 0.0) -> None:
    """One request's database work on one alias; ``work_s`` of app work holds the connection."""
    connection = connections[alias]
    connection.close_if_unusable_or_obsolete()  # request_started, for this alias
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        if work_s:
            time.sleep(work_s)
    finally:
        connection.close_if_unusable_or_obsolete()  # request_finished, for this alias


def request_signals(alias: str, work_s: float = 0.0) -> None:
    """The same, bracketed by Django's real request signals instead."""
    request_started.send(sender=WSGIHandler, environ=_ENVIRON)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        if work_s:
            time.sleep(work_s)
    finally:
        request_finished.send(sender=WSGIHandler)


def _in_new_thread(func: Any, name: str) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=name)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def request_lifecycle(alias: str, work_s: float = 0.0) -> None:
    """``request_direct`` without the query: only getting and giving back the connection.

    ``close_if_health_check_failed()`` is what ``cursor()`` runs before connecting, so
    Django's own health check is included as it is in a real request.
    """
    connection = connections[alias]
    connection.close_if_unusable_or_obsolete()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.close_if_unusable_or_obsolete()


REQUESTS = {
    "direct": request_direct,
    "lifecycle": request_lifecycle,
    "signals": request_signals,
}


def sequential_us_per_request(
    contender: Contender, iterations: int, warmup: int, mode: str = "direct"
) -> float:
    """Workload (a): µs per request in one fresh thread, after ``warmup`` requests.

    The timed loop runs with the garbage collector off (as ``timeit`` does), so a
    collection triggered by one contender's garbage does not land in another's sample.
    """
    alias = contender.alias
    one_request = REQUESTS[mode]

    def measure() -> float:
        try:
            for _ in range(warmup):
                one_request(alias)
            settle(contender)
            for _ in range(min(warmup, 50)):
                one_request(alias)
            gc.collect()
            gc.disable()
            start = time.perf_counter_ns()
            for _ in range(iterations):
                one_request(alias)
            elapsed = time.perf_counter_ns() - start
        finally:
            gc.enable()
            connections[alias].close()
        return elapsed / iterations / 1000.0

    return _in_new_thread(measure, f"bench-a-{alias}")


def interleaved_us_per_request(
    contenders: list[Contender],
    iterations: dict[str, int],
    warmup: dict[str, int],
    mode: str = "direct",
    blocks: int = 20,
) -> tuple[dict[str, float], dict[str, str]]:
    """Workload (a) for several contenders at once, in one fresh thread, interleaved.

    Each contender's ``iterations`` are cut into ``blocks`` blocks and the blocks of all
    contenders alternate (forwards, then backwards), so a burst of load from elsewhere
    on the machine lands on every contender about equally instead of on whichever was
    being measured at the time. Only for the modes that touch nothing but the alias
    under test (``direct``, ``lifecycle``): having the other contenders' connections
    initialised in the same thread changes nothing for them. Returns µs per request by
    contender key, and the error of each contender that failed.
    """

    def measure() -> tuple[dict[str, float], dict[str, str]]:
        one_request = REQUESTS[mode]
        live = list(contenders)
        errors: dict[str, str] = {}
        elapsed = dict.fromkeys((c.key for c in live), 0)
        done = dict.fromkeys((c.key for c in live), 0)

        def fail(contender: Contender, exc: Exception) -> None:
            errors[contender.key] = _describe(exc)
            live.remove(contender)

        try:
            for contender in list(live):
                try:
                    for _ in range(warmup[contender.key]):
                        one_request(contender.alias)
                    settle(contender)
                except Exception as exc:
                    fail(contender, exc)
            for number in range(blocks):
                order = list(live) if number % 2 == 0 else list(reversed(live))
                for contender in order:
                    alias = contender.alias
                    count = max(1, iterations[contender.key] // blocks)
                    gc.collect()
                    gc.disable()
                    try:
                        start = time.perf_counter_ns()
                        for _ in range(count):
                            one_request(alias)
                        elapsed[contender.key] += time.perf_counter_ns() - start
                        done[contender.key] += count
                    except Exception as exc:
                        fail(contender, exc)
                    finally:
                        gc.enable()
        finally:
            for contender in contenders:
                connections[contender.alias].close()
        return (
            {c.key: elapsed[c.key] / done[c.key] / 1000.0 for c in live if done[c.key]},
            errors,
        )

    return _in_new_thread(measure, f"bench-a-{mode}")


@dataclass
class ConcurrentRun:
    """One run of workload (b)."""

    requests_ok: int
    errors: int
    wall_s: float
    latencies_ms: list[float] = field(repr=False)
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests_ok / self.wall_s if self.wall_s else 0.0


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(pct / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def concurrent_run(
    contender: Contender, threads: int, requests: int, work_s: float, warmup: int = 0
) -> ConcurrentRun:
    """Workload (b): ``threads`` fresh threads share ``requests`` requests, started together.

    Each request is ``request_direct`` with ``work_s`` of sleep (app work: a view
    rendering, another service's answer) while the connection is held, as a view would
    hold it until ``request_finished``. Each thread takes the next request number from
    a shared counter until ``requests`` are handed out, so every run does exactly the
    same work.

    With ``warmup`` > 0 the same threads first share that many untimed requests, then
    wait for each other and start the timed ones together: a warm pool, as a server
    has after its first seconds. With 0, the timed requests start on a cold pool and
    include opening its connections.

    Wall time is from the common start to the end of the last timed request; latency is
    per request, from the first ``close_if_unusable_or_obsolete()`` to the end of the
    last. A thread closes its Django connection after its last request (outside the
    timings): that ends the persistent contender's connections and returns pooled ones.
    """
    alias = contender.alias
    warm_tickets = itertools.count()  # next() on a count is atomic under the GIL
    tickets = itertools.count()
    start = threading.Barrier(threads + 1, timeout=300)
    timed = threading.Barrier(threads + 1, timeout=300)
    lock = threading.Lock()
    latencies: list[float] = []
    ends: list[float] = []
    failures: list[str] = []
    error_count = [0]

    def worker() -> None:
        mine: list[float] = []
        errors = 0
        first_error = None
        last_end = 0.0
        try:
            start.wait()
            while next(warm_tickets) < warmup:
                try:
                    request_direct(alias, work_s)
                except Exception as exc:
                    errors += 1
                    first_error = first_error or _describe(exc)
            timed.wait()
            while next(tickets) < requests:
                t0 = time.perf_counter()
                try:
                    request_direct(alias, work_s)
                except Exception as exc:
                    errors += 1
                    first_error = first_error or _describe(exc)
                    last_end = time.perf_counter()
                    continue
                last_end = time.perf_counter()
                mine.append((last_end - t0) * 1000.0)
        finally:
            try:
                connections[alias].close()
            except Exception as exc:
                errors += 1
                first_error = first_error or _describe(exc)
            with lock:
                latencies.extend(mine)
                ends.append(last_end)
                error_count[0] += errors
                if first_error:
                    failures.append(first_error)

    workers = [
        threading.Thread(target=worker, name=f"bench-b-{alias}-{n}", daemon=True)
        for n in range(threads)
    ]
    for thread in workers:
        thread.start()
    start.wait()
    timed.wait()
    began = time.perf_counter()
    for thread in workers:
        thread.join()
    finished = max([t for t in ends if t] or [began])
    return ConcurrentRun(
        requests_ok=len(latencies),
        errors=error_count[0],
        wall_s=finished - began,
        latencies_ms=sorted(latencies),
        first_error=failures[0] if failures else None,
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
