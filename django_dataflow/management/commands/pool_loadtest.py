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

import json
import sys
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from django_dataflow.management.loadtest import (
    PERCENTILES,
    LoadRun,
    Progress,
    Work,
    as_request,
    parse_value,
    pool_stats,
    request_host,
    summarize,
    wsgi_request,
)

# The guide's test_pool_performance(): 50 workers, 100 requests, 100 active users each.
DEFAULT_THREADS = 50
DEFAULT_REQUESTS = 100
DEFAULT_LIMIT = 100
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
