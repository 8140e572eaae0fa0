"""What the benchmark records about the machine, and how it waits for the machine to be quiet.

Other processes on the machine skew every number, so each round records the load and,
before it starts, waits a while for the CPUs to be mostly idle.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

PACKAGES = (
    "Django",
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "mysqlclient",
    "SQLAlchemy",
    "django-db-connection-pool",
    "django-dataflow",
)


def machine_info(monitors: dict[str, Any]) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except Exception:
        commit = None
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "servers": {vendor: monitor.version() for vendor, monitor in monitors.items()},
        "connection_counters": {vendor: monitor.counter for vendor, monitor in monitors.items()},
        "git_commit": commit,
        "django_dataflow_sources_sha256": _sources_digest(),
        "load_average_at_start": load_average(),
    }


def receivers_of_request_signals() -> dict[str, list[str]]:
    from django.core.signals import request_finished, request_started

    def names(signal: Any) -> list[str]:
        out = []
        for receiver in signal._live_receivers(None)[0]:
            out.append(f"{getattr(receiver, '__module__', '?')}.{receiver.__qualname__}")
        return out

    return {"request_started": names(request_started), "request_finished": names(request_finished)}


def cpu_busy(interval: float = 0.5) -> float | None:
    """Share of all CPUs busy over ``interval`` seconds, from /proc/stat (Linux)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return 1.0 - (idle1 - idle0) / total if total else None


def wait_for_quiet(args: argparse.Namespace, log: Any) -> float | None:
    """Before a round: wait up to --quiet-wait s for the machine to be less than
    --quiet-cpu busy (other processes skew every number); return the last reading."""
    if not args.quiet_cpu:
        return None
    deadline = time.monotonic() + args.quiet_wait
    busy = cpu_busy()
    while busy is not None and busy > args.quiet_cpu / 100.0 and time.monotonic() < deadline:
        busy = cpu_busy(1.0)
    if busy is not None and busy > args.quiet_cpu / 100.0:
        log(f"  machine still {busy:.0%} busy after {args.quiet_wait:.0f}s; measuring anyway")
    return busy


def _sources_digest() -> str:
    """A fingerprint of the package's code as benchmarked (the work tree may be uncommitted)."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "django_dataflow").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_average() -> str:
    """The 1-minute load average: other processes on the machine skew every number."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"
