"""A stand-in for one web worker process, driven by a test through stdin/stdout.

    python -m tests.monitoring.worker --name TEST_DB_NAME [--requests N] [--hold N]
        [--wait N]

It serves ``--requests`` simulated requests (framed by request_started /
request_finished, as a WSGI server does), then keeps ``--hold`` connections checked out
from threads and has ``--wait`` more threads waiting for one. It publishes its pool
statistics, prints ``ready <pid>`` and then obeys lines on stdin:

    release N   let N holding threads return their connection
    publish     publish the statistics now, then print ``published``
    (EOF)       release everything, close connections and exit normally

The settings module comes from DJANGO_SETTINGS_MODULE and the snapshot directory from
DATAFLOW_STATS_DIR, exactly as for a real worker.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True, help="The (test) database NAME to use.")
    parser.add_argument("--alias", default="default")
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--hold", type=int, default=0)
    parser.add_argument("--wait", type=int, default=0)
    args = parser.parse_args()

    from django.conf import settings

    for entry in settings.DATABASES.values():
        entry["NAME"] = args.name
        entry["POOL"] = {**entry.get("POOL", {}), "pool_timeout": 60.0}
    settings.DATAFLOW_STATS_INTERVAL = 0.2

    import django

    django.setup()
    from django.core.signals import request_finished, request_started
    from django.db import connections

    from django_dataflow.monitoring import publisher

    publisher.install()  # what AppConfig.ready() does
    for _ in range(args.requests):
        request_started.send(sender=None)
        with connections[args.alias].cursor() as cursor:
            cursor.execute("SELECT 1")
        request_finished.send(sender=None)

    releases = [threading.Event() for _ in range(args.hold + args.wait)]
    holding = threading.Semaphore(0)

    def borrower(release: threading.Event) -> None:
        try:
            with connections[args.alias].cursor() as cursor:
                cursor.execute("SELECT 1")
            holding.release()
            release.wait()
        except Exception as error:  # a waiter timed out: say so, the test will see it
            print(f"error {error!r}", flush=True)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=borrower, args=(release,), daemon=True) for release in releases
    ]
    for thread in threads[: args.hold]:
        thread.start()
    for _ in range(args.hold):
        holding.acquire()
    for thread in threads[args.hold :]:
        thread.start()
    pool = connections[args.alias].dataflow_pool
    deadline = time.monotonic() + 10
    while args.wait and pool.get_stats()["wait_queue"] < args.wait:
        if time.monotonic() > deadline:
            raise SystemExit("the waiters never queued")
        time.sleep(0.01)
    publisher.publish_now()
    print(f"ready {publisher.publisher.pid}", flush=True)

    released = 0
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "release":
            for release in releases[released : released + int(rest[0])]:
                release.set()
            released += int(rest[0])
        elif command == "publish":
            time.sleep(0.05)  # let released threads finish returning their connections
            publisher.publish_now()
            print("published", flush=True)
    for release in releases:
        release.set()
    for thread in threads:
        thread.join(timeout=10)
    connections.close_all()


if __name__ == "__main__":
    main()
