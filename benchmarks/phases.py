"""The phases of a benchmark run: workload (a) in rounds, workload (b) in runs, profiling.

Each function takes the contenders of one vendor and the parsed command line, and returns
plain data for the JSON file; the measuring itself is in workloads.py.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.machine import load_average, wait_for_quiet


def run_a(contenders: list[Any], args: argparse.Namespace, log: Any) -> dict[str, Any]:
    from benchmarks.contenders import ITERATION_SCALE
    from benchmarks.report import summarize_a
    from benchmarks.workloads import interleaved_us_per_request, sequential_us_per_request

    def scaled(contender: Any, count: int, least: int) -> int:
        return max(least, int(count * ITERATION_SCALE.get(contender.key, 1.0)))

    live = [c for c in contenders if c.available]
    rounds: dict[str, list[dict[str, float]]] = {mode: [] for mode in args.a_modes}
    loads: list[dict[str, Any]] = []
    for number in range(args.rounds):
        # Alternate the order so no contender always follows the same neighbour.
        order = live if number % 2 == 0 else list(reversed(live))
        for mode in args.a_modes:
            busy = wait_for_quiet(args, log)
            sample: dict[str, float] = {}
            order = [c for c in order if c.available]
            if mode in ("direct", "lifecycle"):
                sample, errors = interleaved_us_per_request(
                    order,
                    {c.key: scaled(c, args.iterations, 50) for c in order},
                    {c.key: scaled(c, args.warmup, 10) for c in order},
                    mode,
                    blocks=args.blocks,
                )
                for contender in order:
                    if contender.key in errors:
                        contender.unavailable = f"failed in (a): {errors[contender.key]}"
            for contender in order if mode not in ("direct", "lifecycle") else []:
                try:
                    sample[contender.key] = sequential_us_per_request(
                        contender,
                        scaled(contender, args.iterations, 50),
                        scaled(contender, args.warmup, 10),
                        mode,
                    )
                except Exception as exc:
                    contender.unavailable = f"failed in (a): {type(exc).__name__}: {exc}"[:200]
            rounds[mode].append(sample)
            loads.append({"load_1min": load_average(), "cpu_busy_before": busy})
            busy_text = "?" if busy is None else f"{busy:.0%}"
            log(
                f"  (a/{mode}) round {number + 1}/{args.rounds} "
                f"(cpu busy before {busy_text}, load {load_average()}): "
                + ", ".join(f"{k} {v:.1f}" for k, v in sample.items())
            )
    keys = [c.key for c in contenders]
    return {
        "rounds": rounds,
        "machine_load": loads,
        "summary": {mode: summarize_a(rounds[mode], keys) for mode in args.a_modes},
    }


def run_b(
    contenders: list[Any], monitor: Any, args: argparse.Namespace, log: Any
) -> dict[str, Any]:
    """Each run measures every contender once per phase, one at a time, from a closed pool.

    ``cold``: the timed requests start on a closed pool. ``warm``: the same threads
    first share ``--b-warmup`` untimed requests. Connections opened are counted per
    phase run, warm-up included.
    """
    from benchmarks.contenders import dispose
    from benchmarks.report import summarize_b
    from benchmarks.workloads import concurrent_run, percentile

    phases = {"cold": 0, "warm": args.b_warmup}
    live = [c for c in contenders if c.available]
    runs: dict[str, list[dict[str, dict[str, Any]]]] = {phase: [] for phase in phases}
    loads: list[dict[str, Any]] = []
    for contender in live:
        dispose(contender)
    counter = monitor.settled_connections_opened()
    for number in range(args.runs):
        order = live if number % 2 == 0 else list(reversed(live))
        current: dict[str, dict[str, dict[str, Any]]] = {phase: {} for phase in phases}
        busy = wait_for_quiet(args, log)
        for contender in order:
            for phase, warmup in phases.items():
                if not contender.available:
                    continue
                others = monitor.other_clients()
                try:
                    result = concurrent_run(
                        contender, args.threads, args.requests, args.work_ms / 1000.0, warmup
                    )
                except Exception as exc:
                    contender.unavailable = f"failed in (b): {type(exc).__name__}: {exc}"[:200]
                    dispose(contender)
                    counter = monitor.settled_connections_opened()
                    continue
                dispose(contender)
                leftover = monitor.wait_until_no_clients()
                after = monitor.settled_connections_opened()
                opened = None if counter is None or after is None else after - counter
                counter = after
                current[phase][contender.key] = {
                    "rps": result.rps,
                    "p50_ms": percentile(result.latencies_ms, 50),
                    "p99_ms": percentile(result.latencies_ms, 99),
                    "max_ms": result.latencies_ms[-1] if result.latencies_ms else None,
                    "wall_s": result.wall_s,
                    "requests_ok": result.requests_ok,
                    "errors": result.errors,
                    "first_error": result.first_error,
                    "opened": opened,
                    "leftover": leftover,
                    "other_clients": others,
                }
        loads.append({"load_1min": load_average(), "cpu_busy_before": busy})
        for phase in phases:
            runs[phase].append(current[phase])
            busy_text = "?" if busy is None else f"{busy:.0%}"
            log(
                f"  (b/{phase}) run {number + 1}/{args.runs} "
                f"(cpu busy before {busy_text}, load {load_average()}): "
                + ", ".join(
                    f"{k} {v['rps']:.0f}/s p99 {v['p99_ms']:.1f}ms opened {v['opened']}"
                    for k, v in current[phase].items()
                )
            )
    keys = [c.key for c in contenders]
    return {
        "runs": runs,
        "machine_load": loads,
        "summary": {phase: summarize_b(runs[phase], keys) for phase in phases},
    }


def profile(contender: Any, args: argparse.Namespace) -> None:
    from benchmarks.contenders import run_in_fresh_thread, settle
    from benchmarks.workloads import REQUESTS

    one_request = REQUESTS[args.a_modes[0]]

    alias = contender.alias
    iterations = args.iterations

    def body() -> None:
        from django.db import connections

        for _ in range(args.warmup):
            one_request(alias)
        settle(contender)
        try:
            if args.profiler == "pyinstrument":
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0001)
                profiler.start()
                for _ in range(iterations):
                    one_request(alias)
                profiler.stop()
                print(profiler.output_text(unicode=True, color=False, show_all=False))
            else:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
                for _ in range(iterations):
                    one_request(alias)
                prof.disable()
                stats = pstats.Stats(prof).strip_dirs()
                stats.sort_stats("tottime").print_stats(25)
                stats.sort_stats("cumulative").print_stats(40)
        finally:
            connections[alias].close()

    run_in_fresh_thread(body)
