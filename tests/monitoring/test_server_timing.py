"""ServerTimingMiddleware: ``Server-Timing: db-wait;dur=<ms>``, the request's waits
for pooled connections, against a real pool of one held by another thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.http import HttpResponse
from django.test import RequestFactory

from django_dataflow.middleware import ServerTimingMiddleware
from django_dataflow.monitoring.timing import server_timing
from django_dataflow.pool.reporting import WaitTotal
from tests.backends.helpers import make_wrapper

pytestmark = pytest.mark.django_db(transaction=True)

HOLD = 0.3  # seconds the other thread keeps the pool's only connection once we queue


def duration(response) -> float:
    (metric,) = [m for m in response["Server-Timing"].split(", ") if m.startswith("db-wait")]
    return float(metric.split("dur=")[1])


def query(wrapper) -> None:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
    wrapper.close()


def hold_until_queued(options) -> tuple[threading.Thread, list]:
    """Another thread checks the pool's only connection out, and gives it back ``HOLD``
    seconds after a borrower queued for it. Returns the thread and, once it ran, the
    time it gave the connection back."""
    checked_out = threading.Event()
    released = []

    def hold():
        wrapper = make_wrapper(**options)
        wrapper.ensure_connection()
        pool = wrapper.dataflow_pool
        checked_out.set()
        deadline = time.monotonic() + 10
        while pool.get_stats()["wait_queue"] < 1 and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(HOLD)
        wrapper.close()
        released.append(time.monotonic())

    thread = threading.Thread(target=hold)
    thread.start()
    assert checked_out.wait(10)
    return thread, released


def test_the_header_reports_the_wait_a_held_pool_forces():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 10, "pool_recycle": 601}
    holder, released = hold_until_queued(options)
    wrapper = make_wrapper(**options)

    def view(request):
        query(wrapper)
        return HttpResponse("ok")

    response = ServerTimingMiddleware(view)(RequestFactory().get("/"))
    holder.join()
    assert released
    assert duration(response) >= HOLD * 1000  # queued before the hold began


def test_a_request_that_does_not_wait_reports_zero():
    wrapper = make_wrapper(pool_size=1, pool_recycle=602)

    def view(request):
        query(wrapper)
        return HttpResponse("ok")

    response = ServerTimingMiddleware(view)(RequestFactory().get("/"))
    assert response["Server-Timing"] == "db-wait;dur=0.0"


def test_an_existing_server_timing_header_is_kept():
    def view(request):
        response = HttpResponse("ok")
        response["Server-Timing"] = "app;dur=5"
        return response

    response = ServerTimingMiddleware(view)(RequestFactory().get("/"))
    assert response["Server-Timing"] == "app;dur=5, db-wait;dur=0.0"


def test_async_stacks_count_the_waits_of_sync_code():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 10, "pool_recycle": 603}
    holder, _ = hold_until_queued(options)

    async def view(request):
        # A sync view's work, as Django runs it under ASGI: in a copy of the context.
        await sync_to_async(lambda: query(make_wrapper(**options)), thread_sensitive=False)()
        return HttpResponse("ok")

    middleware = ServerTimingMiddleware(view)
    response = asyncio.run(middleware(RequestFactory().get("/")))
    holder.join()
    assert duration(response) >= HOLD * 1000


def test_durations_are_rounded_up_to_a_tenth_of_a_millisecond():
    waits = WaitTotal()
    waits.add(0.00012)
    assert server_timing(waits) == "db-wait;dur=0.2"
