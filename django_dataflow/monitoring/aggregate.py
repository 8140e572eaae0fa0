"""From the snapshots of every process to statistics per alias and per process.

``collect()`` is what ``manage.py pool_stats``, the views, the Prometheus collector and
the health check all read. The calling process's own pools are taken live rather than
from its (up to one interval old) snapshot, so a single-process server (runserver) shows
current numbers even with publishing turned off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from django_dataflow import conf
from django_dataflow.monitoring import store
from django_dataflow.monitoring.publisher import publisher
from django_dataflow.stats import combine

# Snapshot entries that describe a pool rather than count anything.
POOL_LABELS = ("vendor", "database", "sessions", "recent_wait_time_max")


@dataclass
class ProcessStats:
    """One process's view of one alias."""

    pid: int
    program: str
    age: float  # seconds since the snapshot was written (0 for this process)
    stale: bool
    stats: dict[str, Any]
    sessions: list[list[Any]] = field(default_factory=list)
    # The publisher's random id: pids of other pid namespaces (containers sharing the
    # directory) may equal one another and ours.
    instance: str = ""


@dataclass
class AliasStats:
    alias: str
    vendor: str
    database: str
    processes: list[ProcessStats]
    stats: dict[str, Any]  # live processes combined
    exited: dict[str, Any]  # counters of processes that exited


@dataclass
class Report:
    directory: Path
    generated_at: float
    aliases: dict[str, AliasStats]
    error: str | None = None  # why the snapshot directory could not be read
    skipped: list[str] = field(default_factory=list)  # files that are not valid snapshots

    @property
    def process_count(self) -> int:
        return len(
            {(p.pid, p.instance) for alias in self.aliases.values() for p in alias.processes}
        )


def _split(pool: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    labels = {key: pool.get(key) for key in POOL_LABELS}
    stats = {key: value for key, value in pool.items() if key not in POOL_LABELS}
    # The health check reads it; it is a statistic of this process only.
    stats["recent_wait_time_max"] = float(pool.get("recent_wait_time_max") or 0.0)
    return labels, stats


def collect(
    *, directory: Path | None = None, alias: str | None = None, include_self: bool = True
) -> Report:
    """Read every live process's snapshot and combine them. Changes nothing on disk:
    exited processes are left out (their counters counted as exited) for the next
    publisher to retire; a file that is not a valid snapshot is skipped and named in
    ``Report.skipped``."""
    directory = directory if directory is not None else conf.reader_stats_dir()
    error = None
    found, scanned = store.Scan(), False
    try:
        found, scanned = store.scan(directory, stale_after=conf.stale_after()), True
    except FileNotFoundError:
        pass  # nothing was ever published here
    except OSError as problem:
        error = str(problem)
    snapshots = found.live
    if include_self:
        # Our own snapshot is replaced by a live build. Matched by instance, not pid: a
        # process of another pid namespace sharing the directory may have our pid.
        own = publisher.build()
        snapshots = [s for s in snapshots if s.get("instance") != own.get("instance")]
        if own["pools"]:
            own.update(age=0.0, stale=False)
            snapshots.append(own)

    per_alias: dict[str, list[tuple[dict[str, Any], ProcessStats]]] = {}
    for snapshot in snapshots:
        for name, pool in (snapshot.get("pools") or {}).items():
            if alias is not None and name != alias:
                continue
            labels, stats = _split(pool)
            process = ProcessStats(
                pid=int(snapshot["pid"]),
                program=str(snapshot.get("program") or ""),
                age=float(snapshot.get("age", 0.0)),
                stale=bool(snapshot.get("stale")),
                stats=stats,
                sessions=list(labels["sessions"] or []),
                instance=str(snapshot.get("instance") or ""),
            )
            per_alias.setdefault(name, []).append((labels, process))

    live_instances = {str(s.get("instance")) for s in snapshots}
    exited: dict[str, dict[str, Any]] = {}
    if scanned:
        try:
            exited = store.exited_counters(directory, live_instances, found.dead + found.silent)
        except OSError as problem:
            error = str(problem)
    aliases = {}
    for name in sorted(per_alias):
        entries = sorted(per_alias[name], key=lambda entry: entry[1].pid)
        processes = [process for _labels, process in entries]
        labels = entries[-1][0]
        aliases[name] = AliasStats(
            alias=name,
            vendor=str(labels["vendor"] or ""),
            database=str(labels["database"] or ""),
            processes=processes,
            stats=combine(process.stats for process in processes),
            exited=exited.get(name, {}),
        )
    return Report(
        directory=directory,
        generated_at=time.time(),
        aliases=aliases,
        error=error,
        skipped=found.skipped,
    )


def total_counters(alias_stats: AliasStats) -> dict[str, Any]:
    """Counters of live and exited processes together: monotonic over worker restarts."""
    totals: dict[str, dict[str, Any]] = {}
    live = {key: alias_stats.stats.get(key, 0) for key in store.COUNTER_KEYS}
    live["wait_seconds"] = sum(
        float(p.stats.get("wait_time_avg", 0.0)) * int(p.stats.get("waits", 0))
        for p in alias_stats.processes
    )
    live["invalidated_by_reason"] = dict(alias_stats.stats.get("invalidated_by_reason") or {})
    store.add_counters(totals, {"x": live})
    store.add_counters(totals, {"x": alias_stats.exited})
    return totals["x"]


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


def report_to_json(report: Report) -> dict[str, Any]:
    """The JSON form shared by ``pool_stats --format json`` and the stats view."""
    return {
        "generated_at": iso(report.generated_at),
        "stats_dir": str(report.directory),
        "error": report.error,
        "skipped": report.skipped,
        "processes": report.process_count,
        "aliases": {
            name: {
                "vendor": alias.vendor,
                "database": alias.database,
                "processes": len(alias.processes),
                "stats": _public(alias.stats),
                "exited_processes": alias.exited,
                "per_process": [
                    {
                        "pid": process.pid,
                        "program": process.program,
                        "age": round(process.age, 3),
                        "stale": process.stale,
                        "stats": _public(process.stats),
                    }
                    for process in alias.processes
                ],
            }
            for name, alias in report.aliases.items()
        },
    }


def _public(stats: dict[str, Any]) -> dict[str, Any]:
    return {key: stats[key] for key in sorted(stats)}
