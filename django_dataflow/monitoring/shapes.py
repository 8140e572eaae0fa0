"""What a valid snapshot and a valid ``retired.json`` hold.

Any process of the user may write the snapshot directory, and another version of the
app may be running (a rolling deploy): a reader checks every file before using a value
of it, and skips a file (or an entry of ``retired.json``) that does not hold what it
should, with a warning naming it. One bad file must never hide the others.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from django_dataflow.stats import CAPACITY_KEYS, COUNTER_KEYS, GAUGE_KEYS, MAX_KEYS

logger = logging.getLogger("django_dataflow.monitoring")

FORMAT = 1
# Larger than any pid a kernel hands out (Linux: at most 2**22).
MAX_PID = 2**31 - 1
# What every snapshot has; a pool entry's numbers the readers use directly.
SNAPSHOT_KEYS = ("pid", "instance", "namespace", "published_at", "pools")
POOL_NUMBERS = (*CAPACITY_KEYS, *GAUGE_KEYS, *MAX_KEYS, "wait_time_avg", "waits")
# Numbers when present (an older version may lack some).
OPTIONAL_NUMBERS = frozenset(
    (
        *COUNTER_KEYS,
        "pools",
        "recent_wait_time_max",
        "recent_timeouts",
        "recent_connection_errors",
        "connect_waits",
    )
)


def number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) < 2**63 if isinstance(value, int) else math.isfinite(value)


def snapshot_problem(snapshot: Any) -> str | None:
    """Why ``snapshot`` cannot be used (None: it can). Readers skip such a file."""
    if not isinstance(snapshot, dict):
        return "it is not a JSON object"
    if snapshot.get("format") != FORMAT:
        return f"its format is {snapshot.get('format')!r}, not {FORMAT}"
    missing = [key for key in SNAPSHOT_KEYS if key not in snapshot]
    if missing:
        return f"it has no {', '.join(missing)}"
    pid = snapshot["pid"]
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid <= MAX_PID:
        return f"its pid {pid!r} is not a process id"
    if not isinstance(snapshot["instance"], str) or not isinstance(snapshot["namespace"], str):
        return "its instance or namespace is not a string"
    if not number(snapshot["published_at"]):
        return f"its published_at {snapshot['published_at']!r} is not a time"
    started = snapshot.get("started")
    if started is not None and not (number(started) and isinstance(started, int)):
        return f"its started {started!r} is not a whole number"
    if not isinstance(snapshot.get("program", ""), str):
        return "its program is not a string"
    pools = snapshot["pools"]
    if not isinstance(pools, dict):
        return "its pools are not an object"
    for alias, pool in pools.items():
        problem = _pool_problem(pool)
        if problem:
            return f"its pool {alias!r}: {problem}"
    return None


def _pool_problem(pool: Any) -> str | None:
    if not isinstance(pool, dict):
        return "not an object"
    for key in POOL_NUMBERS:
        if key not in pool:
            return f"no {key}"
    for key, value in pool.items():
        if key in ("vendor", "database"):
            if not isinstance(value, str):
                return f"{key} is not a string"
        elif key == "sessions":
            if not isinstance(value, list) or not all(isinstance(s, list) for s in value):
                return "sessions is not a list of lists"
        elif key == "invalidated_by_reason":
            if counter_problem(value):
                return "invalidated_by_reason is not an object of counts"
        elif (
            key in POOL_NUMBERS or key in OPTIONAL_NUMBERS or isinstance(value, (int, float))
        ) and not number(value):
            return f"{key} {value!r} is not a number"
    return None


def counter_problem(value: Any) -> bool:
    return not isinstance(value, dict) or not all(
        isinstance(k, str) and number(v) for k, v in value.items()
    )


def counters_ok(counters: Any) -> bool:
    if not isinstance(counters, dict):
        return False
    for key, value in counters.items():
        if key == "invalidated_by_reason":
            if counter_problem(value):
                return False
        elif not number(value):
            return False
    return True


def clean_retired(data: Any, where: Path) -> dict[str, Any]:
    """``retired.json`` with whatever is malformed in it dropped (with a warning)."""
    fresh: dict[str, Any] = {"format": FORMAT, "base": {}, "recent": {}, "unconfirmed": {}}
    if data is None:
        return fresh
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        logger.warning("Pool statistics: %s is skipped: not a retired-counters file.", where)
        return fresh
    dropped = 0
    base = data.get("base")
    if isinstance(base, dict):
        for alias, counters in base.items():
            if counters_ok(counters):
                fresh["base"][alias] = counters
            else:
                dropped += 1
    else:
        dropped += 1
    recent = data.get("recent")
    if not isinstance(recent, dict):
        dropped += 1
        recent = {}
    for instance, per_alias in recent.items():
        if isinstance(per_alias, dict) and all(map(counters_ok, per_alias.values())):
            fresh["recent"][instance] = per_alias
        else:
            dropped += 1
    unconfirmed = data.get("unconfirmed")
    if isinstance(unconfirmed, dict):
        fresh["unconfirmed"] = {k: v for k, v in unconfirmed.items() if number(v)}
    if dropped:
        logger.warning("Pool statistics: %d malformed entries of %s are skipped.", dropped, where)
    return fresh
