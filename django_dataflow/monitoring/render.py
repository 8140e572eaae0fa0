"""The pools' table of ``manage.py pool_stats``, in PgBouncer's ``SHOW POOLS`` vocabulary.

One row per alias (all processes added up), then one indented row per process; and,
when no process has published anything, a message that says why that may be. The
``--server`` tables belong to their views (``server``, ``pgbouncer``).
"""

from __future__ import annotations

from typing import Any

from django_dataflow.monitoring.aggregate import Report, iso
from django_dataflow.monitoring.text import seconds, table
from django_dataflow.stats import usage

POOL_COLUMNS = (
    "ALIAS / PROCESS",
    "SIZE",
    "OVERFLOW",
    "CL_ACTIVE",
    "CL_WAITING",
    "SV_ACTIVE",
    "SV_IDLE",
    "SV_LOGIN",
    "USAGE",
    "MAXWAIT",
    "WAIT_AVG",
    "WAIT_MAX",
    "CHECKOUTS",
    "CREATED",
    "TIMEOUTS",
    "ERRORS",
    "LEAKS",
)


def _pool_row(label: str, stats: dict[str, Any]) -> list[Any]:
    return [
        label,
        stats["pool_size"],
        f"{stats['overflow']}/{stats['overflow_max']}",
        stats["cl_active"],
        stats["cl_waiting"],
        stats["sv_active"],
        stats["sv_idle"],
        stats["sv_login"],
        f"{usage(stats):.0%}",
        seconds(stats["maxwait"]),
        seconds(stats["wait_time_avg"]),
        seconds(stats["wait_time_max"]),
        stats.get("checkouts", 0),
        stats.get("connections_created", 0),
        stats.get("timeouts", 0),
        stats.get("connection_errors", 0),
        stats.get("leaks", 0),
    ]


def no_pools_message(report: Report) -> str:
    """What to do when nothing was found: said plainly, with the likely causes."""
    lines = [f"No process has published pool statistics in {report.directory}."]
    if report.error:
        lines.append(f"The directory cannot be read: {report.error}")
    lines += [
        "A process publishes once it has used a pooled database connection. If the "
        "application is running and has served requests:",
        "  - run this command as the same user and with the same settings module "
        "(DJANGO_SETTINGS_MODULE) as the application;",
        "  - if the two do not share a temporary directory (systemd PrivateTmp, "
        "containers), set DATAFLOW_STATS_DIR (setting or environment variable) to the "
        "same directory for both, or pass --stats-dir;",
        "  - check that 'django_dataflow' is in INSTALLED_APPS and DATAFLOW_STATS_PUBLISH "
        "is not False.",
    ]
    return "\n".join(lines)


def report_table(report: Report) -> str:
    if not report.aliases:
        return no_pools_message(report)
    rows = []
    for alias in report.aliases.values():
        count = len(alias.processes)
        label = f"{alias.alias} ({count} process{'es' if count != 1 else ''})"
        rows.append(_pool_row(label, alias.stats))
        for process in alias.processes:
            name = f"  pid {process.pid}"
            if process.program:
                name += f" {process.program}"
            if process.stale:
                name += f" (stale, {process.age:.0f}s old)"
            rows.append(_pool_row(name, process.stats))
    header = (
        f"Pool statistics of {report.process_count} process"
        f"{'es' if report.process_count != 1 else ''} at {iso(report.generated_at)} "
        f"(from {report.directory})"
    )
    return f"{header}\n\n{table(POOL_COLUMNS, rows)}"
