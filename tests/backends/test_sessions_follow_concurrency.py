"""Sessions follow the requests in flight, not the number of threads: queue-fed worker
threads (waitress, mod_wsgi, uWSGI, Celery threads) with a few requests in flight hold
about that many server sessions with thread affinity on, as with it off (docs/design.md,
"Whose connection a borrower takes")."""

from __future__ import annotations

import queue
import threading
import time

import pytest
from django.db import connections

from django_dataflow.pool import registry

pytestmark = pytest.mark.django_db(transaction=True)


def test_sixteen_threads_with_two_requests_in_flight_hold_few_sessions(vendor):
    settings_dict = {
        **connections["default"].settings_dict,
        "POOL": {"pool_size": 16, "pool_max_overflow": 4, "pool_timeout": 10},
    }
    tasks: queue.Queue = queue.Queue()
    in_flight = threading.Semaphore(2)
    served, failed = [], []
    pools_seen = set()

    def worker():
        wrapper = connections["default"].__class__(settings_dict, "default")
        try:
            while tasks.get() is not None:
                wrapper.close_if_unusable_or_obsolete()  # request_started
                try:
                    with wrapper.cursor() as cursor:
                        cursor.execute("SELECT 1")
                        cursor.fetchone()
                    time.sleep(0.01)
                    pools_seen.add(wrapper.dataflow_pool)
                    served.append(1)
                except Exception as error:
                    failed.append(error)
                finally:
                    wrapper.close_if_unusable_or_obsolete()  # request_finished
                    in_flight.release()
        finally:
            wrapper.close()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            in_flight.acquire()
            tasks.put(1)
        (pool,) = pools_seen
        opened = pool.get_stats()["connections_created"]
    finally:
        for _ in threads:
            tasks.put(None)
        for thread in threads:
            thread.join(30)
        registry.close_pools()
    assert failed == []
    assert len(served) > 50
    assert opened <= 2 + 2, f"{opened} sessions for 2 requests in flight on 16 threads"
