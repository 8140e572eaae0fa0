"""``manage.py pool_stats``: the pools of every process of the application.

The command runs in its own process, so it reads the snapshots the application's
processes publish (see django_dataflow.monitoring) and adds them up per alias, with
one row per process. ``--server`` adds the database's own view of the sessions.

Exit status: 0 (healthy, or no ``--check``), 1 unhealthy (``--check``; the reasons are
printed), 2 bad usage, nothing to check, or the database unreachable.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from django_dataflow import conf
from django_dataflow.monitoring import health, pgbouncer, render
from django_dataflow.monitoring.aggregate import Report, collect, report_to_json
from django_dataflow.monitoring.pgbouncer import PgBouncerView
from django_dataflow.monitoring.server import ServerUnavailable, ServerView, server_view
from django_dataflow.monitoring.text import printable
from django_dataflow.settings.engines import pooled_vendor

try:  # prometheus_client is optional: without it, --format prometheus is a usage error
    from django_dataflow.monitoring import prometheus
except ImportError as missing:
    prometheus_missing: str | None = str(missing)
else:
    prometheus_missing = None

FORMATS = ("table", "json", "prometheus")
USAGE = 2
UNHEALTHY = 1


class Command(BaseCommand):
    help = (
        "Show the connection pools of every process of the application (PgBouncer's "
        "SHOW POOLS vocabulary), the database's own view with --server, and check pool "
        "health with --check (exit 0 healthy, 1 unhealthy, 2 usage error or unreachable)."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", metavar="ALIAS", help="Only this DATABASES alias.")
        parser.add_argument(
            "--format", choices=FORMATS, default=None, help="Output format (default: table)."
        )
        parser.add_argument(
            "--watch",
            type=float,
            metavar="SECONDS",
            help="Refresh the table every SECONDS until Ctrl-C (with --check: stop with "
            "status 1 at the first unhealthy round).",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Judge pool health: exit 0 healthy, 1 unhealthy (with the reasons).",
        )
        parser.add_argument("--max-usage", type=float, help="--check: usage threshold (0.8).")
        parser.add_argument("--max-wait-queue", type=float, help="--check: waiters (5).")
        parser.add_argument(
            "--max-wait-time", type=float, help="--check: seconds one checkout may wait (1.0)."
        )
        parser.add_argument(
            "--server",
            action="store_true",
            help="Also show the database's own view: sessions by application and process, "
            "their states, max_connections and headroom.",
        )
        parser.add_argument(
            "--stats-dir", type=Path, help="Read snapshots here instead of DATAFLOW_STATS_DIR."
        )
        parser.add_argument(
            "--wide",
            action="store_true",
            help="Show every column of the table (by default it fits 100 columns).",
        )

    def handle(
        self,
        *args: Any,
        database: str | None = None,
        format: str | None = None,
        watch: float | None = None,
        check: bool = False,
        max_usage: float | None = None,
        max_wait_queue: float | None = None,
        max_wait_time: float | None = None,
        server: bool = False,
        stats_dir: Path | None = None,
        wide: bool = False,
        **options: Any,
    ) -> None:
        self.wide = wide
        self._validate(database, format, watch, server)
        try:
            thresholds = conf.check_thresholds(
                usage=max_usage, wait_queue=max_wait_queue, wait_time_max=max_wait_time
            )
        except Exception as error:
            raise CommandError(str(error), returncode=USAGE) from error
        if watch:
            self._watch(watch, database, check, thresholds, server, stats_dir)
            return
        report = collect(directory=stats_dir, alias=database, include_self=False)
        self._show(report, format, database, check, thresholds, server)

    # -- arguments ---------------------------------------------------------------------

    def _validate(self, database: str | None, fmt: str | None, watch: Any, server: bool) -> None:
        if database is not None:
            entry = settings.DATABASES.get(database)
            if entry is None:
                raise CommandError(
                    f"There is no database alias {database!r}; DATABASES has "
                    f"{', '.join(sorted(settings.DATABASES)) or 'none'}.",
                    returncode=USAGE,
                )
            if pooled_vendor(entry.get("ENGINE", "")) is None:
                raise CommandError(
                    f"DATABASES[{database!r}] does not use a django_dataflow ENGINE, so it "
                    "has no pool.",
                    returncode=USAGE,
                )
        if watch is not None and watch <= 0:
            raise CommandError("--watch needs a number of seconds above 0.", returncode=USAGE)
        if watch is not None and fmt not in (None, "table"):
            raise CommandError("--watch refreshes the table format only.", returncode=USAGE)
        if server and fmt == "prometheus":
            raise CommandError("--server is shown in the table and json formats.", returncode=USAGE)
        if fmt == "prometheus" and prometheus_missing is not None:
            raise CommandError(prometheus_missing, returncode=USAGE)

    # -- output ------------------------------------------------------------------------

    def _show(
        self,
        report: Report,
        fmt: str | None,
        database: str | None,
        check: bool,
        thresholds: dict[str, float],
        server: bool,
    ) -> None:
        for skipped in report.skipped:
            self.stderr.write(f"warning: {printable(skipped)}")
        problems = health.failures(report) + health.evaluate(report, thresholds) if check else []
        server_views = self._server_views(report, database) if server else []
        if fmt == "json":
            document = report_to_json(report)
            if check:
                document["health"] = {
                    "healthy": not problems and bool(report.aliases),
                    "thresholds": thresholds,
                    "problems": [problem.message for problem in problems],
                }
            if server:
                document["server"] = {view.alias: view.to_json() for view in server_views}
            self.stdout.write(json.dumps(document, indent=2, sort_keys=True))
        elif fmt == "prometheus":
            self.stdout.write(prometheus.exposition(report).decode(), ending="")
        elif fmt == "table" or not check:
            self.stdout.write(render.report_table(report, wide=getattr(self, "wide", False)))
            for view in server_views:
                self.stdout.write("\n" + view.table())
        if report.error:
            raise CommandError(
                f"Cannot read the pool statistics in {report.directory}: {report.error}",
                returncode=USAGE,
            )
        if check:
            self._verdict(report, problems, fmt)

    def _verdict(self, report: Report, problems: list[health.Problem], fmt: str | None) -> None:
        # JSON carries the verdict in its document ("health"). The Prometheus text must
        # stay parseable (`--format prometheus > pools.prom`): its verdict goes to stderr.
        verdict_outs: dict[str | None, OutputWrapper | None] = {
            "json": None,
            "prometheus": self.stderr,
        }
        verdict_out = verdict_outs.get(fmt, self.stdout)
        if not report.aliases:
            if fmt is None:  # the table (which says why) was not printed
                self.stdout.write(render.no_pools_message(report))
            raise CommandError("UNKNOWN: no pool statistics to check.", returncode=USAGE)
        if problems:
            # Each problem once: listed here (or in the JSON document), then only the
            # count as the command's error.
            if verdict_out is not None:
                for problem in problems:
                    verdict_out.write(f"UNHEALTHY: {problem.message}")
            count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
            where = "in the document's health" if fmt == "json" else "above"
            raise CommandError(f"UNHEALTHY: {count}, listed {where}.", returncode=UNHEALTHY)
        if verdict_out is not None:
            verdict_out.write(f"OK: {health.summary(report)}")

    def _server_views(
        self, report: Report, database: str | None
    ) -> list[ServerView | PgBouncerView]:
        aliases = [database] if database else self._pooled_server_aliases()
        views: list[ServerView | PgBouncerView] = []
        seen: set[tuple[Any, Any, Any]] = set()
        for alias in aliases:
            entry = settings.DATABASES[alias]
            if pooled_vendor(entry.get("ENGINE", "")) == "sqlite":
                if database:
                    raise CommandError(
                        "SQLite has no server, so --server has nothing to show.",
                        returncode=USAGE,
                    )
                continue
            where = (entry.get("HOST"), entry.get("PORT"), entry.get("NAME"))
            if where in seen:
                continue  # two aliases on one database: one view is enough
            seen.add(where)
            try:
                # Each view prints itself (table(), to_json()); only the asking differs.
                if pgbouncer.is_admin_console(entry):
                    views.append(pgbouncer.console_view(alias))
                else:
                    views.append(server_view(alias, report))
            except ServerUnavailable as error:
                raise CommandError(str(error), returncode=USAGE) from error
        if not views:
            raise CommandError(
                "No pooled database with a server (PostgreSQL, MySQL/MariaDB) is configured.",
                returncode=USAGE,
            )
        return views

    @staticmethod
    def _pooled_server_aliases() -> list[str]:
        return [
            alias
            for alias, entry in settings.DATABASES.items()
            if pooled_vendor(entry.get("ENGINE", "")) in ("postgresql", "mysql")
        ]

    def _watch(
        self,
        seconds: float,
        database: str | None,
        check: bool,
        thresholds: dict[str, float],
        server: bool,
        stats_dir: Path | None,
    ) -> None:
        clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
        try:
            while True:
                report = collect(directory=stats_dir, alias=database, include_self=False)
                self.stdout.write(clear, ending="")
                self._show(report, "table", database, check, thresholds, server)
                self.stdout.write(f"\n(refreshing every {seconds:g}s; Ctrl-C to stop)")
                self.stdout.flush()
                time.sleep(seconds)
        except KeyboardInterrupt:
            self.stdout.write("")
