"""ServerTimingMiddleware: the request's wait for database connections, in a header.

``Server-Timing: db-wait;dur=<ms>`` is the total time the request's checkouts queued
for a connection, on every pool it used (browsers' developer tools and RUM agents
show it beside the request's timings). It is set on every response, with ``dur=0``
when nothing waited: a metric that is sometimes missing cannot be told apart from a
middleware that is missing, and averages and percentiles need the zeros.

How it costs nothing to a request that does not wait: the middleware makes the engine
collect the waits of this request's context (``pool/reporting.py``); only a checkout
that queued, already the slow path, adds its wait. A streaming response's body runs
after the header is sent: checkouts made there are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from django_dataflow.pool.reporting import WaitTotal, collect_waits

HEADER = "Server-Timing"
METRIC = "db-wait"


def server_timing(waits: WaitTotal) -> str:
    """The Server-Timing metric of ``waits``: milliseconds, rounded up to 0.1 ms so a
    wait never reads as shorter than it was."""
    return f"{METRIC};dur={math.ceil(waits.seconds * 10_000) / 10:.1f}"


def add_server_timing(response: HttpResponseBase, waits: WaitTotal) -> None:
    """Add the metric to the response's Server-Timing header (after any already set)."""
    metric = server_timing(waits)
    existing = response.get(HEADER)
    response[HEADER] = f"{existing}, {metric}" if existing else metric


class ServerTimingMiddleware:
    """Report the request's wait for pooled connections in ``Server-Timing``. Put it
    near the top of ``MIDDLEWARE`` so that the waits of the middleware below it count."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        with collect_waits() as waits:
            response = self.get_response(request)
        add_server_timing(response, waits)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        # Sync views run in a copy of this context (asgiref): the total is shared.
        with collect_waits() as waits:
            response = await self.get_response(request)
        add_server_timing(response, waits)
        return response
