"""Run the pooling benchmark: ``python benchmarks/run.py [--quick] [--vendors ...]``.

It first makes sure ``.cache/bench-venv`` holds the contenders (see bootstrap.py) and
re-executes itself there. Then, in one process with one ``settings.configure()``, it
measures every contender on every vendor asked for:

(a) one thread: µs per request (request start -> SELECT 1 -> request end), rounds of
    all contenders in alternating order, median per contender and the paired ratio to
    ``persistent``;
(b) 50 threads, 2000 requests, pool 20 + 30: requests/s, p50/p99 latency and the
    server connections opened, contenders run one at a time, from a cold pool and
    from a warm one;
(spike) HikariCP's spike-demand test on PostgreSQL: every connect delayed 150 ms by a
    proxy (delay_proxy.py), a pool of 5 that may grow to 50, a burst of 50 threads
    making one 2 ms query each: connections open at the end and the burst's time;
(c) requests that wait 100 ms on an external call between two queries, 200 threads, 50
    threads and 200 ASGI tasks at once, pool 20 + 30, request scope against
    transaction scope: requests served, errors, p50/p99, server sessions at most.

A table goes to stdout and everything (samples included) to a JSON file.
See docs/benchmarks.md for the method and the latest results.
"""

from __future__ import annotations

import argparse
import atexit
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import bootstrap  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--vendors", default="postgresql,mysql,sqlite")
    parser.add_argument(
        "--workloads", default="a,b,c,spike", help="any of a, b, c, spike, comma-separated"
    )
    parser.add_argument(
        "--contenders",
        default="",
        help="comma-separated contender keys (default: all); see benchmarks/contenders.py",
    )
    parser.add_argument("--rounds", type=int, help="(a) rounds [full 11, quick 2]")
    parser.add_argument("--iterations", type=int, help="(a) requests per round [5000, 300]")
    parser.add_argument("--warmup", type=int, help="(a) warm-up requests per round [500, 50]")
    parser.add_argument(
        "--a-modes",
        help="(a) request styles: direct (targets), lifecycle and signals (reference) "
        "[full direct,lifecycle,signals; quick direct]",
    )
    parser.add_argument(
        "--blocks",
        type=int,
        help="(a) direct/lifecycle: blocks per round that the contenders take in turn [20, 3]",
    )
    parser.add_argument("--runs", type=int, help="(b) runs per contender [7, 1]")
    parser.add_argument("--threads", type=int, help="(b) threads [50, 20]")
    parser.add_argument("--requests", type=int, help="(b) requests per run [2000, 300]")
    parser.add_argument(
        "--b-warmup", type=int, help="(b) untimed requests before the warm phase [500, 100]"
    )
    parser.add_argument("--work-ms", type=float, default=1.0, help="(b) app work per request")
    parser.add_argument("--spike-runs", type=int, help="(spike) runs per contender [7, 2]")
    parser.add_argument("--spike-threads", type=int, default=50, help="(spike) burst threads")
    parser.add_argument("--spike-size", type=int, default=5, help="(spike) pool size")
    parser.add_argument("--spike-max", type=int, default=50, help="(spike) pool maximum")
    parser.add_argument(
        "--spike-delay-ms", type=float, default=150.0, help="(spike) delay of every connect"
    )
    parser.add_argument(
        "--spike-query-ms", type=float, default=2.0, help="(spike) pg_sleep of each query"
    )
    parser.add_argument("--c-runs", type=int, help="(c) runs per contender and variant [5, 1]")
    parser.add_argument("--c-requests", type=int, default=200, help="(c) requests at once")
    parser.add_argument("--c-inflight", type=int, default=50, help="(c) the p99 comparison's")
    parser.add_argument("--c-sleep-ms", type=float, default=100.0, help="(c) external call")
    parser.add_argument("--c-timeout", type=float, default=10.0, help="(c) pool_timeout, s")
    parser.add_argument(
        "--quiet-cpu",
        type=float,
        help="before each round, wait until the machine's CPUs are less than this %% busy "
        "[full 30, quick 0 = off]",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=45.0, help="longest wait for --quiet-cpu, seconds"
    )
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--max-overflow", type=int, default=30)
    parser.add_argument(
        "--json",
        default=str(REPO / ".cache" / "benchmarks" / "results.json"),
        help="where to write the full results",
    )
    parser.add_argument("--markdown", help="also write the tables as markdown to this file")
    parser.add_argument(
        "--no-app",
        action="store_true",
        help="leave django_dataflow out of INSTALLED_APPS (its engines work either way)",
    )
    parser.add_argument(
        "--profile",
        metavar="CONTENDER",
        help="profile workload (a) for one contender on the first vendor instead of benchmarking",
    )
    parser.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    parser.add_argument(
        "--no-bootstrap",
        action="store_true",
        help="run in the current interpreter instead of .cache/bench-venv",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "rounds": 2 if quick else 11,
        "iterations": 300 if quick else 5000,
        "warmup": 50 if quick else 500,
        "blocks": 3 if quick else 20,
        "runs": 1 if quick else 7,
        "spike_runs": 2 if quick else 7,
        "c_runs": 1 if quick else 5,
        "threads": 20 if quick else 50,
        "requests": 300 if quick else 2000,
        "b_warmup": 100 if quick else 500,
        "quiet_cpu": 0 if quick else 30.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.a_modes is None:
        args.a_modes = "direct" if quick else "direct,lifecycle,signals"
    args.a_modes = [m.strip() for m in args.a_modes.split(",") if m.strip()]
    args.vendors = [v.strip() for v in args.vendors.split(",") if v.strip()]
    args.workloads = {w.strip() for w in args.workloads.split(",") if w.strip()}
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()] or None
    return args


def configure_django(databases: dict[str, Any], with_app: bool) -> list[str]:
    import django
    from django.conf import settings

    apps = []
    if with_app:
        try:
            import django_dataflow  # noqa: F401

            apps.append("django_dataflow")
        except Exception:
            pass
    settings.configure(
        DEBUG=False,
        SECRET_KEY="dataflow-benchmark",
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=apps,
        DATABASES=databases,
        LOGGING_CONFIG=None,
    )
    django.setup()
    return apps


def _masked(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    if entry is None or not entry.get("PASSWORD"):
        return entry
    return {**entry, "PASSWORD": "***"}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.no_bootstrap:
        bootstrap.ensure_venv_and_reexec(sys.argv)
    # A plain `kill` should still run the atexit cleanups.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from benchmarks.contenders import (
        CONTENDER_KEYS,
        PoolShape,
        build_contenders,
        build_spike_contenders,
        check_imports,
        databases_setting,
        dispose,
        probe,
    )
    from benchmarks.external_calls import build_c_contenders, run_c
    from benchmarks.machine import load_average, machine_info, receivers_of_request_signals
    from benchmarks.phases import profile, run_a, run_b
    from benchmarks.report import check_targets, render
    from benchmarks.report_c import check_targets_c
    from benchmarks.servers import open_monitor
    from benchmarks.spike import run_spike

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    unknown = [k for k in args.contenders or [] if k not in CONTENDER_KEYS]
    if unknown:
        log(f"unknown contender(s) {unknown}; known: {', '.join(CONTENDER_KEYS)}")
        return 2
    if args.profile and args.profile not in CONTENDER_KEYS:
        log(f"unknown contender {args.profile!r}; known: {', '.join(CONTENDER_KEYS)}")
        return 2

    shape = PoolShape(size=args.pool_size, overflow=args.max_overflow)
    monitors: dict[str, Any] = {}
    vendor_problems: dict[str, str] = {}
    for vendor in args.vendors:
        try:
            monitors[vendor] = open_monitor(vendor)
            # Also on an exception or SIGTERM: the MariaDB monitor restores userstat.
            atexit.register(monitors[vendor].close)
        except Exception as exc:
            vendor_problems[vendor] = f"server unavailable: {type(exc).__name__}: {exc}"
            vendor_problems[vendor] = vendor_problems[vendor].splitlines()[0][:200]

    keys = [args.profile] if args.profile else args.contenders
    if keys and args.profile is None and "persistent" not in keys:
        keys = ["persistent", *keys]  # every ratio is to persistent
    client_params = {vendor: monitor.client for vendor, monitor in monitors.items()}
    contenders = build_contenders(args.vendors, keys, shape, client_params)
    for contender in contenders:
        if contender.vendor in vendor_problems and contender.available:
            contender.unavailable = vendor_problems[contender.vendor]
    # The spike workload's contenders reach PostgreSQL through the delaying proxy, with
    # a pool shape of their own; they are aliases of their own in the same settings.
    proxy = None
    spike_contenders = []
    spike_problem = None
    if "spike" in args.workloads and "postgresql" in args.vendors and args.profile is None:
        if "postgresql" in vendor_problems:
            spike_problem = vendor_problems["postgresql"]
        else:
            from benchmarks.delay_proxy import DelayProxy

            server = monitors["postgresql"].client
            try:
                proxy = DelayProxy(server.host, server.port, args.spike_delay_ms)
                atexit.register(proxy.close)
                spike_shape = PoolShape(
                    size=args.spike_size, overflow=args.spike_max - args.spike_size
                )
                spike_contenders = build_spike_contenders(
                    args.contenders, spike_shape, server, proxy.port
                )
            except Exception as exc:
                spike_problem = f"delaying proxy: {type(exc).__name__}: {exc}"[:200]
    # Workload (c)'s contenders: aliases of their own, with --c-timeout as pool_timeout.
    c_contenders = []
    if "c" in args.workloads and args.profile is None:
        c_shape = PoolShape(size=shape.size, overflow=shape.overflow, timeout=args.c_timeout)
        c_contenders = build_c_contenders(args.vendors, args.contenders, c_shape, client_params)
        for contender in c_contenders:
            if contender.vendor in vendor_problems and contender.available:
                contender.unavailable = vendor_problems[contender.vendor]
    everyone = contenders + spike_contenders + c_contenders
    apps = configure_django(databases_setting(everyone), with_app=not args.no_app)
    check_imports(everyone)
    for contender in everyone:
        probe(contender)

    if args.profile:
        target = contenders[0]
        if not target.available:
            log(f"{target.key} on {target.vendor} is unavailable: {target.unavailable}")
            return 1
        profile(target, args)
        return 0

    result: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/run.py", *argv]),
        "machine": machine_info(monitors),
        "installed_apps": apps,
        "request_signal_receivers": receivers_of_request_signals(),
        "params": {
            "a": {
                "rounds": args.rounds,
                "iterations": args.iterations,
                "warmup": args.warmup,
                "blocks": args.blocks,
                "modes": args.a_modes,
            },
            "b": {
                "runs": args.runs,
                "threads": args.threads,
                "requests": args.requests,
                "work_ms": args.work_ms,
                "warmup": args.b_warmup,
                "quiet_cpu_pct": args.quiet_cpu,
                "pool_size": shape.size,
                "max_overflow": shape.overflow,
            },
            "c": {
                "runs": args.c_runs,
                "requests": args.c_requests,
                "inflight": args.c_inflight,
                "sleep_ms": args.c_sleep_ms,
                "timeout": args.c_timeout,
                "pool_size": shape.size,
                "max_overflow": shape.overflow,
            },
            "spike": {
                "runs": args.spike_runs,
                "threads": args.spike_threads,
                "size": args.spike_size,
                "max": args.spike_max,
                "delay_ms": args.spike_delay_ms,
                "query_ms": args.spike_query_ms,
                "quiet_cpu_pct": args.quiet_cpu,
            },
        },
        "vendors": {},
    }
    started = time.monotonic()
    for vendor in args.vendors:
        mine = [c for c in contenders if c.vendor == vendor]
        vendor_result: dict[str, Any] = {"notes": []}
        if vendor in vendor_problems:
            vendor_result["unavailable"] = vendor_problems[vendor]
        else:
            vendor_result["server"] = monitors[vendor].version()
            log(f"== {vendor}: {vendor_result['server']}")
            if "a" in args.workloads:
                vendor_result["a"] = run_a(mine, args, log)
                for contender in mine:
                    dispose(contender)
            if "b" in args.workloads:
                vendor_result["b"] = run_b(mine, monitors[vendor], args, log)
                for contender in mine:
                    dispose(contender)
                others = max(
                    (
                        row["other_clients_max"]
                        for summary in vendor_result["b"]["summary"].values()
                        for row in summary.values()
                    ),
                    default=0,
                )
                if others and vendor == "mysql":
                    vendor_result["notes"].append(
                        f"up to {others} other client(s) were connected to the server during "
                        "(b); MariaDB's Connections counter is server-wide, so counts may "
                        "include theirs"
                    )
            if "c" in args.workloads:
                mine_c = [c for c in c_contenders if c.vendor == vendor]
                vendor_result["c"] = run_c(mine_c, monitors[vendor], args, log)
            if "spike" in args.workloads and vendor == "postgresql":
                if spike_problem:
                    vendor_result["notes"].append(f"spike not run: {spike_problem}")
                else:
                    assert proxy is not None
                    vendor_result["spike"] = run_spike(
                        spike_contenders, proxy, monitors[vendor], args, log
                    )
                    vendor_result["spike"]["contenders"] = [
                        {
                            "key": c.key,
                            "alias": c.alias,
                            "unavailable": c.unavailable,
                            "settings": _masked(c.settings),
                        }
                        for c in spike_contenders
                    ]
            vendor_result["targets"] = check_targets(
                vendor,
                vendor_result.get("a", {}).get("summary", {}).get("direct"),
                vendor_result.get("b", {}).get("summary"),
                shape.limit,
                vendor_result.get("spike", {}).get("summary"),
            ) + check_targets_c(vendor, vendor_result.get("c"), result["params"]["c"])
        vendor_result["contenders"] = [
            {
                "key": c.key,
                "alias": c.alias,
                "reference": c.reference,
                "unavailable": c.unavailable,
                "settings": _masked(c.settings),
            }
            for c in mine
        ]
        result["vendors"][vendor] = vendor_result
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    result["machine"]["load_average_at_end"] = load_average()
    for monitor in monitors.values():
        monitor.close()
    if proxy is not None:
        proxy.close()

    print(render(result))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"results written to {out} ({result['elapsed_s']} s)")
    if args.markdown:
        Path(args.markdown).write_text(render(result, markdown=True) + "\n")
        log(f"markdown written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
