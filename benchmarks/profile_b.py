"""Where the time goes in workload (b), warm: ``python benchmarks/profile_b.py``.

Why it exists: on MariaDB, ours served fewer requests per second than 50 persistent
connections in (b), where it does no pool work but park and take back. This runs the same
warm burst (50 threads, ``SELECT 1`` + 1 ms of app work, pool 20 + 30) for one contender
with each thread's timed requests under a ``cProfile.Profile`` of its own, merges them and
prints the functions by wall time (a call that gives up the interpreter lock is charged
the wait to get it back, which is what 50 threads pay), per request. The warm-up and the
first ``--skip`` timed requests are not profiled.

``--compare`` instead measures requests/s of ``persistent`` and ``ours`` in interleaved
runs, longer than run.py's, and prints the medians of the per-run ratios.

    python benchmarks/profile_b.py --vendor mysql --contender ours
    python benchmarks/profile_b.py --vendor mysql --compare --runs 9
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import bootstrap  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vendor", default="mysql", choices=("postgresql", "mysql", "sqlite"))
    parser.add_argument("--contender", default="ours")
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument(
        "--requests", type=int, help="timed requests per run (6000; 20000 with --compare)"
    )
    # Warm means every thread has its own connection: 50 threads on a 20 + 30 pool open
    # the overflow one connect at a time, and 500 warm-up requests (about 55 ms) ended
    # before it had, leaving 20-60 of the timed requests waiting for a connection.
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--skip", type=int, default=500, help="timed requests not profiled")
    parser.add_argument("--work-ms", type=float, default=1.0)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument(
        "--callers", action="append", default=[], help="also list the callers of these functions"
    )
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-bootstrap", action="store_true")
    args = parser.parse_args(argv)
    if args.requests is None:
        # Longer runs with --compare: runs of 6000 requests (0.6 s) varied 0.69-1.51 x.
        args.requests = 20000 if args.compare else 6000
    if not args.no_bootstrap:
        bootstrap.ensure_venv_and_reexec(sys.argv)

    from benchmarks.contenders import (
        PoolShape,
        build_contenders,
        databases_setting,
        dispose,
        probe,
    )
    from benchmarks.run import configure_django
    from benchmarks.servers import open_monitor

    monitor = open_monitor(args.vendor)
    keys = ["persistent", "ours"] if args.compare else [args.contender]
    contenders = build_contenders([args.vendor], keys, PoolShape(), {args.vendor: monitor.client})
    configure_django(databases_setting(contenders), with_app=True)
    for contender in contenders:
        probe(contender)
        if not contender.available:
            print(f"{contender.key}: {contender.unavailable}", file=sys.stderr)
            return 1

    work_s = args.work_ms / 1000.0
    try:
        if args.compare:
            compare(contenders, monitor, args, work_s)
        else:
            profile(contenders[0], args, work_s)
    finally:
        for contender in contenders:
            dispose(contender)
        monitor.close()
    return 0


def compare(contenders: list[Any], monitor: Any, args: argparse.Namespace, work_s: float) -> None:
    from benchmarks.contenders import dispose
    from benchmarks.machine import load_average
    from benchmarks.workloads import concurrent_run

    rps: dict[str, list[float]] = {contender.key: [] for contender in contenders}
    for number in range(args.runs):
        order = contenders if number % 2 == 0 else list(reversed(contenders))
        for contender in order:
            run = concurrent_run(contender, args.threads, args.requests, work_s, args.warmup)
            dispose(contender)
            monitor.wait_until_no_clients()
            rps[contender.key].append(run.rps)
            if run.errors:
                print(f"  {contender.key}: {run.errors} errors, {run.first_error}", file=sys.stderr)
        print(
            f"run {number + 1}/{args.runs} (load {load_average()}): "
            + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rps.items()),
            flush=True,
        )
    for key, values in rps.items():
        ratios = [a / b for a, b in zip(values, rps["persistent"], strict=True)]
        print(
            f"{key}: median {statistics.median(values):.0f} req/s, x persistent "
            f"{statistics.median(ratios):.3f} (per run {min(ratios):.2f}-{max(ratios):.2f})"
        )


def profile(contender: Any, args: argparse.Namespace, work_s: float) -> None:
    from benchmarks import workloads

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    local = threading.local()
    calls = itertools.count()
    original = workloads.request_direct
    skip = args.warmup + args.skip

    def profiled(alias: str, work: float = 0.0) -> None:
        if next(calls) < skip:
            return original(alias, work)
        prof = getattr(local, "profile", None)
        if prof is None:
            prof = local.profile = cProfile.Profile()
            with lock:
                profiles.append(prof)
        prof.enable()
        try:
            return original(alias, work)
        finally:
            prof.disable()

    workloads.request_direct = profiled
    try:
        run = workloads.concurrent_run(
            contender, args.threads, args.requests, work_s, warmup=args.warmup
        )
    finally:
        workloads.request_direct = original
    profiled_requests = max(1, args.requests - args.skip)
    print(
        f"{contender.key} on {contender.vendor}: {run.rps:.0f} req/s under the profiler, "
        f"{profiled_requests} requests profiled; wall µs per request:"
    )
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        stats.add(prof)
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    print(f"{'calls/req':>9} {'own µs/req':>10} {'cum µs/req':>10}  function")
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in rows[: args.top]:
        where = f"{Path(filename).name}:{line}({name})" if line else name
        print(
            f"{ncalls / profiled_requests:9.2f} {tottime / profiled_requests * 1e6:10.1f} "
            f"{cumtime / profiled_requests * 1e6:10.1f}  {where}"
        )
    for name in args.callers:
        stats.strip_dirs().print_callers(name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
