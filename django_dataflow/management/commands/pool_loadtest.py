"""``manage.py pool_loadtest``: the guide's ``test_pool_performance()`` as a command.

It sends ``--requests`` simulated web requests from ``--threads`` threads at once. A
query request (``--model`` or ``--sql``) is framed by Django's ``request_started`` and
``request_finished`` signals, exactly as a WSGI server frames a real request, so the
connection goes back to the pool between requests; a ``--url`` request goes through
Django's own WSGI handler, middleware and view included. Each thread closes its
connections when it is done. The command then prints the response times (average, p50,
p95, p99, max), the errors, and the statistics of every pool the run used.

Exit status: 0 when every request succeeded, 1 when any failed, 2 for bad arguments.
"""

from __future__ import annotations

import io
import json
import math
import sys
import threading
import time
import wsgiref.util
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, connections

from django_dataflow.stats import get_pool_stats

# The guide's test_pool_performance(): 50 workers, 100 requests, 100 active users each.
DEFAULT_THREADS = 50
DEFAULT_REQUESTS = 100
DEFAULT_LIMIT = 100
PERCENTILES = (50, 95, 99)
# Pool statistics printed in text mode, in the guide's order; --json prints them all.
SHOWN_STATS = (
    "size",
    "checked_out",
    "overflow",
    "total",
    "wait_queue",
    "overflow_max",
    "idle_connections",
    "connections_created",
    "checkouts",
    "waits",
    "wait_time_avg",
    "wait_time_max",
    "timeouts",
    "connection_errors",
)
# Gauges whose highest value during the run is worth reporting.
PEAK_STATS = ("checked_out", "total", "wait_queue")
SAMPLE_INTERVAL = 0.05
MESSAGE_LENGTH = 300
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
        request_started.send(sender=Command)
        try:
            body()
        finally:
            request_finished.send(sender=Command)

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


class Command(BaseCommand):
    help = (
        "Load-test the connection pools: many threads run a query (or GET a URL) at "
        "once, then response times and pool statistics are printed. Without --model, "
        "--sql or --url each request lists the first 100 active users, as the "
        "DataFlow guide's test_pool_performance() does."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--threads",
            type=int,
            default=DEFAULT_THREADS,
            help=f"Concurrent threads (default {DEFAULT_THREADS}).",
        )
        parser.add_argument(
            "--requests",
            type=int,
            default=DEFAULT_REQUESTS,
            help=f"Requests in total, shared among the threads (default {DEFAULT_REQUESTS}).",
        )
        parser.add_argument(
            "--database",
            help="Alias to query, and the only one whose pool is reported. Default: the "
            "one DATABASE_ROUTERS choose for each read of --model ('default' without "
            "routers), 'default' for --sql; with --url, the view decides.",
        )
        target = parser.add_mutually_exclusive_group()
        target.add_argument(
            "--model",
            help="app_label.ModelName to list (default: AUTH_USER_MODEL).",
        )
        target.add_argument("--sql", help="Raw SQL to run and fetch, instead of a model query.")
        target.add_argument(
            "--url",
            help="Path to GET through Django's WSGI handler (middleware and view), "
            "e.g. /users/. Statuses 4xx and 5xx count as errors.",
        )
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="Filter for --model, repeatable (value: true, false, none, an integer "
            "or text). Default: active=true or is_active=true, whichever field exists.",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=DEFAULT_LIMIT,
            help=f"Rows fetched per --model request (default {DEFAULT_LIMIT}).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")

    def handle(self, *args: Any, **options: Any) -> None:
        threads: int = options["threads"]
        requests: int = options["requests"]
        if threads < 1 or requests < 1:
            raise CommandError("--threads and --requests must be at least 1.", returncode=2)
        using: str | None = options["database"]
        if using is not None and using not in settings.DATABASES:
            raise CommandError(
                f"Unknown database {using!r}; settings.DATABASES has: "
                f"{', '.join(settings.DATABASES)}.",
                returncode=2,
            )
        work, description = self._work(options, using)

        as_json: bool = options["json"]
        progress_stream = None
        if options["verbosity"] > 0:
            progress_stream = sys.stderr if as_json else self.stdout
        aliases = [using] if using is not None else list(settings.DATABASES)
        if not as_json:
            self.stdout.write(
                f"pool_loadtest: {requests} requests on {threads} threads; {description}"
            )

        run = LoadRun(work, threads, requests)
        progress = Progress(progress_stream, requests)
        peaks: dict[str, dict[str, float]] = {}
        # Checkouts so far (system checks may have connected): a pool counts as used by
        # the run only if it lent more.
        before = {alias: (pool_stats(alias) or {}).get("checkouts", 0) for alias in aliases}

        def tick() -> None:
            progress.update(run.done)
            for alias in aliases:
                stats = pool_stats(alias)
                if stats is not None:
                    peak = peaks.setdefault(alias, dict.fromkeys(PEAK_STATS, 0))
                    for key in PEAK_STATS:
                        peak[key] = max(peak[key], stats.get(key, 0))

        wall_time = run.run(tick)
        tick()
        progress.finish(run.done)

        used = [
            alias
            for alias in aliases
            if alias == using or (pool_stats(alias) or {}).get("checkouts", 0) > before[alias]
        ]
        report = self._report(run, wall_time, description, used, peaks, using)
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, default=str))
        else:
            self._print_report(report)
        failed = sum(run.errors.values())
        if failed:
            raise CommandError(f"{failed} of {requests} requests failed.", returncode=1)

    # -- what one request does -------------------------------------------------------------

    def _work(self, options: dict[str, Any], using: str | None) -> tuple[Work, str]:
        if options["url"]:
            if options["filter"]:
                raise CommandError("--filter applies to --model only.", returncode=2)
            path = options["url"] if options["url"].startswith("/") else f"/{options['url']}"
            return (
                wsgi_request(WSGIHandler(), path, request_host()),
                f"GET {path} through Django's WSGI handler",
            )
        if options["sql"]:
            if options["filter"]:
                raise CommandError("--filter applies to --model only.", returncode=2)
            alias = using or DEFAULT_DB_ALIAS
            sql = options["sql"]

            def run_sql() -> None:
                with connections[alias].cursor() as cursor:
                    cursor.execute(sql)
                    if cursor.description is not None:
                        cursor.fetchall()

            return as_request(run_sql), f"SQL {sql!r} on {self._alias_label(alias)}"
        return self._model_work(options, using)

    def _model_work(self, options: dict[str, Any], using: str | None) -> tuple[Work, str]:
        label = options["model"]
        if label is None:
            if not apps.is_installed("django.contrib.auth"):
                raise CommandError(
                    "The default query lists users, but django.contrib.auth is not "
                    "installed. Pass --model, --sql or --url.",
                    returncode=2,
                )
            label = settings.AUTH_USER_MODEL
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            raise CommandError(
                f"Unknown model {label!r}; give it as app_label.ModelName.", returncode=2
            ) from None
        filters = self._filters(model, options["filter"])
        limit: int = options["limit"]
        if limit < 1:
            raise CommandError("--limit must be at least 1.", returncode=2)
        queryset = model._default_manager.filter(**filters)
        if not queryset.query.order_by and not model._meta.ordering:
            queryset = queryset.order_by("pk")
        if using is not None:
            queryset = queryset.using(using)

        def list_rows() -> None:
            list(queryset.all()[:limit])

        where = ", ".join(f"{key}={value!r}" for key, value in filters.items()) or "all rows"
        if using:
            target = self._alias_label(using)
        elif settings.DATABASE_ROUTERS:
            # Not asked here: a router may open a connection to answer (a replica's health
            # check), and the main thread should hold none while the threads run.
            target = "the database DATABASE_ROUTERS choose for each read"
        else:
            target = self._alias_label(DEFAULT_DB_ALIAS)
        return (
            as_request(list_rows),
            f"{model._meta.label} where {where}, first {limit}, on {target}",
        )

    @staticmethod
    def _filters(model: Any, given: list[str]) -> dict[str, Any]:
        if not given:
            for name in ("active", "is_active"):
                try:
                    field = model._meta.get_field(name)
                except FieldDoesNotExist:
                    continue
                if field.concrete:
                    return {name: True}
            return {}
        filters = {}
        for item in given:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise CommandError(f"--filter {item!r}: write it as FIELD=VALUE.", returncode=2)
            try:
                model._meta.get_field(name.split("__")[0])
            except FieldDoesNotExist:
                fields = ", ".join(f.name for f in model._meta.get_fields() if f.concrete)
                raise CommandError(
                    f"--filter {item!r}: {model._meta.label} has no field "
                    f"{name.split('__')[0]!r}. Fields: {fields}.",
                    returncode=2,
                ) from None
            filters[name] = parse_value(value)
        return filters

    @staticmethod
    def _alias_label(alias: str) -> str:
        return f"{alias!r} ({connections[alias].vendor})"

    # -- the report ------------------------------------------------------------------------

    def _report(
        self,
        run: LoadRun,
        wall_time: float,
        description: str,
        aliases: list[str],
        peaks: dict[str, dict[str, float]],
        using: str | None,
    ) -> dict[str, Any]:
        pools = {}
        for alias in aliases:
            stats = pool_stats(alias)
            if stats is not None:
                pools[alias] = {"vendor": connections[alias].vendor, **stats}
        return {
            "work": description,
            "database": using,
            "threads": run.threads,
            "requests": run.requests,
            "wall_time": wall_time,
            "requests_per_second": run.requests / wall_time if wall_time else None,
            "response_time": summarize(run.times),
            "errors": sum(run.errors.values()),
            "error_counts": dict(run.errors.most_common()),
            "error_examples": {kind: run.error_examples[kind] for kind in run.errors},
            "pool_stats": pools,
            "peak": {alias: peaks.get(alias, dict.fromkeys(PEAK_STATS, 0)) for alias in pools},
        }

    def _print_report(self, report: dict[str, Any]) -> None:
        write = self.stdout.write
        times = report["response_time"]
        rate = report["requests_per_second"]
        write(
            f"Requests:       {report['requests']} in {report['wall_time']:.3f} s"
            + (f" ({rate:.1f} per second)" if rate else "")
        )
        write(f"Average response time: {times['average']:.4f} s")
        write(
            "Response time:  "
            + ", ".join(f"p{p} {times[f'p{p}']:.4f} s" for p in PERCENTILES)
            + f", max {times['max']:.4f} s"
        )
        if report["errors"]:
            write(self.style.ERROR(f"Errors:         {report['errors']}"))
            for kind, count in report["error_counts"].items():
                example = report["error_examples"][kind]
                write(f"  {count} x {kind}" + (f", e.g. {example}" if example != kind else ""))
        else:
            write(self.style.SUCCESS("Errors:         0"))
        if not report["pool_stats"]:
            write("Pool stats:     no pool was used (is the ENGINE a django_dataflow backend?)")
        for alias, stats in report["pool_stats"].items():
            write(f"Pool stats for {alias!r} ({stats['vendor']}):")
            for key in SHOWN_STATS:
                if key in stats:
                    value = stats[key]
                    shown = f"{value:.4f}" if isinstance(value, float) else value
                    write(f"  {key:<22}{shown}")
            peak = report["peak"][alias]
            if any(peak.values()):
                write(
                    "  peak during the run:  "
                    + ", ".join(f"{key} {value:g}" for key, value in peak.items())
                )
