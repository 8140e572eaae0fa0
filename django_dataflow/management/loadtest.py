"""The machinery of ``manage.py pool_loadtest``: simulated requests on threads.

``LoadRun`` sends a number of requests from a number of threads at once and times each;
``as_request`` frames a piece of work with Django's ``request_started`` and
``request_finished`` signals, as a WSGI server frames a real request, so the connection
goes back to the pool between requests; ``wsgi_request`` goes through Django's own WSGI
handler. ``summarize`` turns the times into average and percentiles; ``Progress`` draws the
progress bar (or plain lines when not on a terminal).
"""

from __future__ import annotations

import io
import math
import threading
import time
import wsgiref.util
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import OutputWrapper
from django.core.signals import request_finished, request_started
from django.db import connections

from django_dataflow.stats import get_pool_stats

PERCENTILES = (50, 95, 99)
MESSAGE_LENGTH = 300
# How often the progress bar and the peak gauges are refreshed, in seconds.
SAMPLE_INTERVAL = 0.05
BAR_WIDTH = 30

Work = Callable[[], None]


def pool_stats(alias: str) -> dict[str, Any] | None:
    """The statistics of ``alias``'s pools in this process, or None if it has none (no
    connection made yet, or an ENGINE that does not pool)."""
    try:
        stats = get_pool_stats(alias)
    except ValueError:  # not a django_dataflow ENGINE
        return None
    return stats if stats.get("pools", 1) else None


def parse_value(text: str) -> Any:
    """A --filter value: true/false, none/null, an integer, or the text itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        return text


def percentile(ordered: list[float], percent: float) -> float:
    """The nearest-rank percentile of an ascending list: the smallest value that at
    least ``percent`` % of the values do not exceed."""
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(times: list[float]) -> dict[str, float]:
    """Average, percentiles and extremes of response times, in seconds."""
    ordered = sorted(times)
    summary = {"average": sum(ordered) / len(ordered)}
    for percent in PERCENTILES:
        summary[f"p{percent}"] = percentile(ordered, percent)
    summary["max"] = ordered[-1]
    summary["min"] = ordered[0]
    return summary


class HTTPStatusError(Exception):
    """A --url request answered with a 4xx or 5xx status."""


def describe_error(error: BaseException) -> tuple[str, str]:
    """(the kind an error is counted under, its message).

    Errors are counted by exception class (``PoolTimeout``), or by status for a failed
    --url request (``HTTP 500 Internal Server Error``): messages that differ only in
    their figures still add up to one line.
    """
    first_line = (str(error).strip().splitlines() or [""])[0][:MESSAGE_LENGTH]
    if isinstance(error, HTTPStatusError):
        return first_line, first_line
    return type(error).__name__, first_line


def as_request(body: Work) -> Work:
    """Frame ``body`` the way a WSGI server frames a request: ``request_started`` before
    (Django resets query logs and closes stale connections), ``request_finished`` after
    (Django closes the connection, which returns it to the pool)."""

    def request() -> None:
        request_started.send(sender=LoadRun)
        try:
            body()
        finally:
            request_finished.send(sender=LoadRun)

    return request


def wsgi_request(handler: WSGIHandler, path: str, host: str) -> Work:
    """A GET of ``path`` through Django's WSGI handler; a 4xx or 5xx status is an error."""
    path_info, _, query = path.partition("?")

    def request() -> None:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "HTTP_HOST": host,
            "SERVER_NAME": host,
            "wsgi.input": io.BytesIO(b""),
        }
        wsgiref.util.setup_testing_defaults(environ)
        status: list[str] = []
        response = handler(environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            for _chunk in response:
                pass
        finally:
            response.close()  # sends request_finished, as a WSGI server does
        code = int(status[0].split()[0])
        if code >= 400:
            raise HTTPStatusError(f"HTTP {status[0]}")

    return request


def request_host() -> str:
    """A Host header that ALLOWED_HOSTS accepts."""
    for entry in settings.ALLOWED_HOSTS:
        if entry != "*":
            return entry.lstrip(".")
    return "localhost"


class LoadRun:
    """One load test: the threads, their shared counters, and the timings."""

    def __init__(self, work: Work, threads: int, requests: int) -> None:
        self.work = work
        self.threads = threads
        self.requests = requests
        self.lock = threading.Lock()
        self.started = 0
        self.times: list[float] = []
        self.errors: Counter[str] = Counter()
        # The first message seen of each kind of error.
        self.error_examples: dict[str, str] = {}
        self.go = threading.Event()

    @property
    def done(self) -> int:
        return len(self.times)

    def _next(self) -> bool:
        with self.lock:
            if self.started >= self.requests:
                return False
            self.started += 1
            return True

    def _worker(self) -> None:
        self.go.wait()
        try:
            while self._next():
                error: tuple[str, str] | None = None
                started = time.perf_counter()
                try:
                    self.work()
                except Exception as exc:
                    error = describe_error(exc)
                elapsed = time.perf_counter() - started
                with self.lock:
                    self.times.append(elapsed)
                    if error is not None:
                        kind, message = error
                        self.errors[kind] += 1
                        self.error_examples.setdefault(kind, message)
        finally:
            # What a server thread does when it ends: nothing stays checked out.
            connections.close_all()

    def run(self, tick: Callable[[], None]) -> float:
        """Run every request; call ``tick()`` about every SAMPLE_INTERVAL seconds while
        they run. Returns the wall time in seconds."""
        workers = [
            threading.Thread(target=self._worker, name=f"pool_loadtest-{n}", daemon=True)
            for n in range(self.threads)
        ]
        for worker in workers:
            worker.start()
        started = time.perf_counter()
        self.go.set()  # every thread is up: the load starts at once, as in the guide
        for worker in workers:
            while worker.is_alive():
                worker.join(SAMPLE_INTERVAL)
                tick()
        return time.perf_counter() - started


class Progress:
    """A progress bar on a terminal; a plain line every 10 % otherwise."""

    def __init__(self, stream: TextIO | OutputWrapper | None, total: int) -> None:
        self.stream = stream
        self.total = total
        self.tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self.next_step = 10
        self.began = time.perf_counter()

    def _write(self, text: str) -> None:
        assert self.stream is not None  # the callers return early without a stream
        if isinstance(self.stream, OutputWrapper):
            self.stream.write(text, ending="")  # it would add a newline
        else:
            self.stream.write(text)
        self.stream.flush()

    def update(self, done: int) -> None:
        if self.stream is None:
            return
        elapsed = time.perf_counter() - self.began
        if self.tty:
            filled = BAR_WIDTH * done // self.total
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self._write(f"\r[{bar}] {done}/{self.total} requests  {elapsed:.1f} s")
            return
        percent = 100 * done // self.total
        if percent >= self.next_step:
            self._write(f"{done}/{self.total} requests done ({percent} %), {elapsed:.1f} s\n")
            self.next_step = percent // 10 * 10 + 10

    def finish(self, done: int) -> None:
        self.update(done)
        if self.stream is not None and self.tty:
            self._write("\n")
