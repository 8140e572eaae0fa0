"""What handing a connection to a waiting request costs: ``python benchmarks/handoff.py``.

Why it exists: under load most checkouts wait, and a connection given back goes straight
to the oldest waiter. This isolates that path. Eight threads share one PostgreSQL
connection (ours ``pool_size=1, pool_max_overflow=0``, Django's native pool
``min_size=max_size=1``), each making 100 requests (the *direct* request of
``benchmarks/run.py``: ``close_if_unusable_or_obsolete()``, ``SELECT 1``,
``close_if_unusable_or_obsolete()``), so nearly every request is a hand-over from one
thread to another. Rounds alternate between the two pools; printed: the median µs per
request of each and the median of the per-round ratios ours / native.

    .cache/bench-venv/bin/python benchmarks/handoff.py             # 11 rounds
    .cache/bench-venv/bin/python benchmarks/handoff.py --rounds 21 --threads 16

It needs psycopg_pool (Django's native pool): run it with the benchmark environment that
``benchmarks/run.py`` creates (``.cache/bench-venv``), from the repository's root.
PostgreSQL is reached through the test settings' ``POSTGRES_*`` environment variables.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def configure() -> None:
    import django
    from django.conf import settings

    server = {
        "HOST": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
        "PORT": os.environ.get("POSTGRES_PORT", "5432"),
        "USER": os.environ.get("POSTGRES_USER", "postgres"),
        "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
        "NAME": os.environ.get("POSTGRES_DB", "test"),
        "CONN_MAX_AGE": 0,
    }
    settings.configure(
        USE_TZ=True,
        TIME_ZONE="UTC",
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            "native": {
                **server,
                "ENGINE": "django.db.backends.postgresql",
                "OPTIONS": {"pool": {"min_size": 1, "max_size": 1}},
            },
            "ours": {
                **server,
                "ENGINE": "django_dataflow.backends.postgresql",
                "POOL": {"pool_size": 1, "pool_max_overflow": 0, "pool_pre_ping": False},
            },
        },
    )
    django.setup()


def request(alias: str) -> None:
    from django.db import connections

    connection = connections[alias]
    connection.close_if_unusable_or_obsolete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    connection.close_if_unusable_or_obsolete()


def run(alias: str, threads: int, requests: int) -> float:
    """µs per request with ``threads`` threads making ``requests`` requests each."""
    from django.db import connections

    start = threading.Barrier(threads + 1)

    def body() -> None:
        start.wait()
        for _ in range(requests):
            request(alias)
        connections.close_all()

    workers = [threading.Thread(target=body) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - began) * 1e6 / (threads * requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=100, help="per thread and round")
    args = parser.parse_args()
    configure()
    pools = ("native", "ours")
    for alias in pools:  # warm up: open the connection, import everything
        run(alias, args.threads, args.requests)
    times: dict[str, list[float]] = {alias: [] for alias in pools}
    ratios = []
    for number in range(args.rounds):
        this_round = {}
        for alias in pools if number % 2 else reversed(pools):
            this_round[alias] = run(alias, args.threads, args.requests)
            times[alias].append(this_round[alias])
        ratios.append(this_round["ours"] / this_round["native"])
    for alias in pools:
        print(f"{alias:7s} {statistics.median(times[alias]):7.1f} µs per request (median)")
    print(
        f"ours / native: {statistics.median(ratios):.3f} "
        f"(rounds {min(ratios):.2f}-{max(ratios):.2f}, {args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()
