"""The pools' table of ``manage.py pool_stats``, in PgBouncer's ``SHOW POOLS`` vocabulary.

One row per alias (all processes added up), then one indented row per process; and,
when no process has published anything, a message that says why that may be. The
``--server`` tables belong to their views (``server``, ``pgbouncer``).
"""

from __future__ import annotations

from typing import Any

from django_dataflow.monitoring.aggregate import Report, iso
from django_dataflow.monitoring.text import printable, seconds, table
from django_dataflow.stats import usage

# The default table fits a terminal of WIDTH columns; ``--wide`` shows every column.
WIDTH = 100
# name -> (header, cell). ACTIVE is PgBouncer's cl_active and sv_active alike (each
# borrower holds one server connection), so it is shown once.
COLUMNS: dict[str, tuple[str, Any]] = {
    "size": ("SIZE", lambda s: s["pool_size"]),
    "overflow": ("OVERFLOW", lambda s: f"{s['overflow']}/{s['overflow_max']}"),
    "active": ("ACTIVE", lambda s: s["cl_active"]),
    "idle": ("IDLE", lambda s: s["sv_idle"]),
    "login": ("LOGIN", lambda s: s["sv_login"]),
    "waiting": ("WAITING", lambda s: s["cl_waiting"]),
    "usage": ("USAGE", lambda s: f"{usage(s):.0%}"),
    "maxwait": ("MAXWAIT", lambda s: seconds(s["maxwait"])),
    "wait_avg": ("WAIT_AVG", lambda s: seconds(s["wait_time_avg"])),
    "wait_max": ("WAIT_MAX", lambda s: seconds(s["wait_time_max"])),
    "waits": ("WAITS", lambda s: waits(s)),
    "busy_waits": ("BUSY_WAITS", lambda s: busy_waits(s)),
    "open_waits": ("OPEN_WAITS", lambda s: int(s.get("connect_waits", 0))),
    "checkouts": ("CHECKOUTS", lambda s: s.get("checkouts", 0)),
    "created": ("CREATED", lambda s: s.get("connections_created", 0)),
    "failed": ("FAILED", lambda s: f"{s.get('timeouts', 0)}/{s.get('connection_errors', 0)}"),
    "timeouts": ("TIMEOUTS", lambda s: s.get("timeouts", 0)),
    "errors": ("ERRORS", lambda s: s.get("connection_errors", 0)),
    "leaks": ("LEAKS", lambda s: s.get("leaks", 0)),
}
NARROW = (
    "size",
    "overflow",
    "active",
    "idle",
    "waiting",
    "usage",
    "maxwait",
    "waits",
    "failed",
)
WIDE = tuple(name for name in COLUMNS if name not in ("waits", "failed"))
# ``--wide`` speaks PgBouncer's SHOW POOLS (CL_ACTIVE is also its SV_ACTIVE).
PGBOUNCER_HEADERS = {
    "active": "CL_ACTIVE",
    "idle": "SV_IDLE",
    "login": "SV_LOGIN",
    "waiting": "CL_WAITING",
}
LEGEND = (
    "WAITS: checkouts that waited for a busy pool / for a connection being opened (a cold\n"
    "start waits for connections). FAILED: checkouts timed out / connections that failed.\n"
    "--wide: every column."
)


def busy_waits(stats: dict[str, Any]) -> int:
    """Waits for a connection to come back (the pool was busy), not for one being opened."""
    return max(0, int(stats.get("waits", 0)) - int(stats.get("connect_waits", 0)))


def waits(stats: dict[str, Any]) -> str:
    return f"{busy_waits(stats)}/{int(stats.get('connect_waits', 0))}"


def _row(label: str, stats: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    return [label, *(COLUMNS[name][1](stats) for name in columns)]


def no_pools_message(report: Report) -> str:
    """What to do when nothing was found: said plainly, with the likely causes."""
    lines = [f"No process has published pool statistics in {printable(str(report.directory))}."]
    if report.error:
        lines.append(f"The directory cannot be read: {printable(report.error)}")
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


def report_table(report: Report, *, wide: bool = False) -> str:
    if not report.aliases:
        return no_pools_message(report)
    columns = WIDE if wide else NARROW
    rows = []
    for alias in report.aliases.values():
        count = len(alias.processes)
        label = f"{alias.alias} ({count} process{'es' if count != 1 else ''})"
        rows.append(_row(label, alias.stats, columns))
        for process in alias.processes:
            name = f"  pid {process.pid}"
            if process.program:
                name += f" {process.program}"
            if process.stale:
                name += f" (stale, {process.age:.0f}s old)"
            rows.append(_row(name, process.stats, columns))
    header = (
        f"Pool statistics of {report.process_count} process"
        f"{'es' if report.process_count != 1 else ''} at {iso(report.generated_at)}\n"
        f"from {printable(str(report.directory))}"
    )
    names = PGBOUNCER_HEADERS if wide else {}
    headers = ["ALIAS / PROCESS", *(names.get(name, COLUMNS[name][0]) for name in columns)]
    body = table(headers, rows, max_width=None if wide else WIDTH)
    legend = "" if wide else f"\n{LEGEND}"
    return f"{header}\n\n{body}{legend}"
