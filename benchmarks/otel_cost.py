"""What ``DATAFLOW_OPENTELEMETRY = True`` costs: ``python benchmarks/otel_cost.py``.

Why it exists: the OpenTelemetry metrics must cost the request path nothing when off and
at most 2 µs per checkout and checkin when on. This times, on SQLite, one thread doing
Django's ``ensure_connection()`` then ``close()`` (a checkout and a checkin; with
``pool_thread_affinity`` on, the default, a take-back and a park) in a process with the
setting off and in one with it on and the SDK's MeterProvider installed (an
``InMemoryMetricReader``, collected at the end). Runs alternate between the two, each in
a fresh process (the setting is read when Django starts); the medians are printed.

With the setting on, the request path does the same work as off: the histograms are
replayed from the pools' own counts when the reader collects. So the cost on is the
collection's, printed per checkout it replayed: it is paid by the thread that collects
(the SDK's exporter thread), not by a request.

    python benchmarks/otel_cost.py                  # 7 runs of each, 20000 checkouts a run
    python benchmarks/otel_cost.py --no-affinity    # real checkouts and checkins
    python benchmarks/otel_cost.py --runs 3 --iterations 5000

Run it with an interpreter that has the package and opentelemetry-sdk (the test
environment: ``.venv/bin/python benchmarks/otel_cost.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def child(mode: str, iterations: int, affinity: bool) -> dict[str, float]:
    """One measurement in this process: µs per checkout + checkin, and with ``mode`` on,
    µs per checkout of the collection that follows."""
    import django
    from django.conf import settings

    reader = None
    if mode == "on":
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    directory = tempfile.mkdtemp(prefix="otel-cost-")
    settings.configure(
        INSTALLED_APPS=["django_dataflow"],
        DATABASES={
            "default": {
                "ENGINE": "django_dataflow.backends.sqlite3",
                "NAME": os.path.join(directory, "db.sqlite3"),
                "POOL": {"pool_size": 4, "pool_thread_affinity": affinity},
            }
        },
        DATAFLOW_OPENTELEMETRY=mode == "on",
        DATAFLOW_STATS_PUBLISH=False,
        USE_TZ=True,
    )
    django.setup()
    from django.db import connection

    from django_dataflow.stats import get_pool_stats

    for _ in range(1000):  # warm up: the pool, the wrapper, the caches
        connection.ensure_connection()
        connection.close()
    if reader is not None:
        reader.get_metrics_data()  # the warm-up's observations, out of the way
    checkouts_before = get_pool_stats()["checkouts"]
    started = time.perf_counter()
    for _ in range(iterations):
        connection.ensure_connection()
        connection.close()
    elapsed = time.perf_counter() - started
    checkouts = get_pool_stats()["checkouts"] - checkouts_before
    assert checkouts == iterations, (checkouts, iterations)
    result = {"request_us": elapsed / iterations * 1e6, "collect_us": 0.0}
    if reader is not None:
        started = time.perf_counter()
        data = reader.get_metrics_data()
        result["collect_us"] = (time.perf_counter() - started) / iterations * 1e6
        names = {
            metric.name
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }
        assert "db.client.connection.use_time" in names, names
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--child", choices=("off", "on"), help=argparse.SUPPRESS)
    parser.add_argument("--no-affinity", action="store_true", help="pool_thread_affinity off")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.iterations, not args.no_affinity)))
        return 0

    results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for _ in range(args.runs):
        for mode in ("off", "on"):
            command = [sys.executable, __file__, "--child", mode]
            command += ["--iterations", str(args.iterations)]
            if args.no_affinity:
                command.append("--no-affinity")
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[mode].append(json.loads(output))
    off = statistics.median(run["request_us"] for run in results["off"])
    on = statistics.median(run["request_us"] for run in results["on"])
    collect = statistics.median(run["collect_us"] for run in results["on"])
    affinity = "off" if args.no_affinity else "on"
    print(
        f"SQLite, one thread, pool_thread_affinity {affinity}, {args.runs} runs of "
        f"{args.iterations} checkouts + checkins each (medians):"
    )
    print(f"  setting off:            {off:6.2f} µs per checkout + checkin")
    print(f"  setting on, SDK reader: {on:6.2f} µs per checkout + checkin ({on - off:+.2f})")
    print(f"  collection, on:         {collect:6.2f} µs per checkout replayed")
    print(f"  on, all told:           {on - off + collect:+6.2f} µs per checkout")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
