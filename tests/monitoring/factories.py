"""Hand-made snapshots, for tests that need a given pool state without a database."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django_dataflow.monitoring import store
from django_dataflow.stats import empty_stats


def pool_entry(pool_size: int = 4, max_overflow: int = 2, **values: Any) -> dict[str, Any]:
    """One alias's entry of a snapshot; ``checked_out`` also sets the PgBouncer names."""
    stats = dict(empty_stats(pool_size, max_overflow))
    stats.update(pools=1, vendor="postgresql", database="app", sessions=[])
    stats.update(values)
    out = stats["checked_out"]
    stats.update(active_connections=out, cl_active=out, sv_active=out)
    stats.update(cl_waiting=stats["wait_queue"], sv_idle=stats["idle_connections"])
    stats["total"] = max(stats["total"], out + stats["idle_connections"])
    return {
        key: int(value) if key in ("pool_size", "size") else value for key, value in stats.items()
    }


def snapshot(pools: dict[str, dict[str, Any]], *, pid: int | None = None, **extra: Any) -> dict:
    """A snapshot of process ``pid``: by default the test runner's parent, a live process
    that is not this one (whose pools readers take live instead)."""
    pid = os.getppid() if pid is None else pid
    return {
        "format": store.FORMAT,
        "pid": pid,
        "instance": extra.pop("instance", f"test{pid}"),
        "started": store.process_start_time(pid),
        "namespace": store.pid_namespace(),
        "program": "gunicorn",
        "interval": 2.0,
        "published_at": time.time(),
        "pools": pools,
        **extra,
    }


def write(directory: Path, data: dict) -> Path:
    store.ensure_dir(directory)
    path = store.snapshot_path(directory, data["pid"], data["instance"])
    store.write_json(path, data)
    return path


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
