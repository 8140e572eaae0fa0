"""The guide's pool-health rules, applied to every process's pool of every alias.

A pool belongs to one process, so each (process, alias) pool is judged on its own: one
saturated worker is a problem even when the others idle. The rules, and the guide's
thresholds (overridable, see ``conf.check_thresholds``):

* usage: ``checked_out / pool_size`` above 0.8;
* wait queue: more than 5 borrowers waiting;
* slow acquisition: a checkout wait longer than 1 s in the last minute, or a borrower
  waiting that long right now (``maxwait``). The pool's lifetime ``wait_time_max`` is
  not used: one slow wait at start-up would make the check fail until the next restart.

Those are signs of a busy pool. What stops service is told apart (``failures``):
checkouts that timed out, connection attempts that failed, in the last minute. A
readiness probe (the health view, the django-health-check plugin) fails only on those:
taking a busy instance out of rotation because it is busy moves its load onto the
others, which then become busy too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_dataflow.monitoring.aggregate import Report
from django_dataflow.stats import usage


@dataclass(frozen=True)
class Problem:
    alias: str
    pid: int
    # "usage", "wait_queue", "wait_time_max" (busy); "timeouts", "connection_errors"
    # (failures)
    rule: str
    value: float
    threshold: float
    message: str


def recent_wait(stats: dict[str, Any]) -> float:
    return max(float(stats.get("recent_wait_time_max", 0.0)), float(stats.get("maxwait", 0.0)))


def evaluate(report: Report, thresholds: dict[str, float]) -> list[Problem]:
    """Every threshold crossed, worst pools first within each rule."""
    problems = []
    for alias in report.aliases.values():
        for process in alias.processes:
            stats = process.stats
            where = f"{alias.alias!r} in process {process.pid}"
            ratio = usage(stats)
            if ratio > thresholds["usage"]:
                problems.append(
                    Problem(
                        alias.alias,
                        process.pid,
                        "usage",
                        ratio,
                        thresholds["usage"],
                        f"pool usage of {where} is {ratio:.0%} "
                        f"({stats.get('checked_out', 0)} of pool_size "
                        f"{stats.get('pool_size', 0)} checked out), above "
                        f"{thresholds['usage']:.0%}: raise pool_size",
                    )
                )
            queue = int(stats.get("wait_queue", 0))
            if queue > thresholds["wait_queue"]:
                problems.append(
                    Problem(
                        alias.alias,
                        process.pid,
                        "wait_queue",
                        queue,
                        thresholds["wait_queue"],
                        f"{queue} requests wait for a connection of {where}, more than "
                        f"{thresholds['wait_queue']:g}: the pool is exhausted",
                    )
                )
            waited = recent_wait(stats)
            if waited > thresholds["wait_time_max"]:
                problems.append(
                    Problem(
                        alias.alias,
                        process.pid,
                        "wait_time_max",
                        waited,
                        thresholds["wait_time_max"],
                        f"a checkout of {where} waited {waited:.2f}s, longer than "
                        f"{thresholds['wait_time_max']:g}s: connections are slow to come "
                        "free, raise pool_size or pool_max_overflow",
                    )
                )
    return sorted(problems, key=lambda p: (p.rule, -p.value / (p.threshold or 1)))


def failures(report: Report) -> list[Problem]:
    """What stops service now: checkouts that timed out and connection attempts that
    failed in the last minute, per process's pool of each alias."""
    problems = []
    for alias in report.aliases.values():
        for process in alias.processes:
            stats = process.stats
            where = f"{alias.alias!r} in process {process.pid}"
            timeouts = int(stats.get("recent_timeouts", 0))
            if timeouts:
                problems.append(
                    Problem(
                        alias.alias,
                        process.pid,
                        "timeouts",
                        timeouts,
                        0,
                        f"{timeouts} checkouts of {where} timed out in the last minute "
                        "(PoolTimeout): requests fail; raise pool_size or find what holds "
                        "the connections",
                    )
                )
            errors = int(stats.get("recent_connection_errors", 0))
            if errors:
                none = " and it has no connection open" if not stats.get("total") else ""
                problems.append(
                    Problem(
                        alias.alias,
                        process.pid,
                        "connection_errors",
                        errors,
                        0,
                        f"{errors} connection attempts of {where} failed in the last "
                        f"minute{none}: is the database server reachable?",
                    )
                )
    return sorted(problems, key=lambda p: (p.rule, -p.value))


def summary(report: Report) -> str:
    """One line about what was checked, for an OK verdict."""
    parts = []
    for alias in report.aliases.values():
        stats = alias.stats
        parts.append(
            f"{alias.alias}: {stats['checked_out']} of {stats['pool_size']} in use, "
            f"{stats['wait_queue']} waiting, {len(alias.processes)} processes"
        )
    return "; ".join(parts)
