"""Running the example project under real servers (gunicorn, uvicorn) and Celery in
child processes, with the environment they need, and reading their pool statistics
with ``manage.py pool_stats`` from yet another process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.processes import harness
from tests.integration.reliability.counterapp.ledger import Ledger
from tests.integration.reliability.servers import HOST, PG_PORT

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "example_project"


def database_url(database: str, **pool: Any) -> str:
    query = "&".join(f"{key}={value}" for key, value in pool.items())
    return f"postgres://postgres@{HOST}:{PG_PORT}/{database}" + (f"?{query}" if query else "")


def environment(url: str, stats_dir: Path, **extra: str) -> dict[str, str]:
    """What a worker of the example project is started with."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL", "REPLICA_URL", "ANALYTICS_URL"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="tests.integration.reliability.web_settings",
        DATABASE_URL=url,
        DATAFLOW_STATS_DIR=str(stats_dir),
        DJANGO_DEBUG="false",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(EXAMPLE)]),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


def pool_stats(env: dict[str, str]) -> dict[str, Any]:
    """``manage.py pool_stats --format json``, run in a process of its own."""
    return json.loads(manage(env, "pool_stats", "--format", "json", timeout=60))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Server(harness.Server):
    """A web server child process, stopped (with its workers) on ``stop()``."""

    ready_path = "/reliability/whoami/"


def gunicorn(worker_class: str, workers: int, threads: int = 1, preload: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "gunicorn", "tests.integration.reliability.web_wsgi:application"]
    argv += ["--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads)]
    argv += ["--graceful-timeout", "10", "--log-level", "warning"]
    return argv + (["--preload"] if preload else [])


def uvicorn(workers: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "tests.integration.reliability.web_asgi:application",
        "--workers", str(workers), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


def read_ledger(server: Any, database: str, counter: str) -> Ledger:
    """The ledger of ``counter`` in the example project's database, read directly."""
    with server.connect(dbname=database) as connection:
        value = connection.execute(
            "SELECT value FROM counterapp_counter WHERE name = %s", [counter]
        ).fetchone()
        hits = connection.execute(
            "SELECT request_id FROM counterapp_hit WHERE counter = %s", [counter]
        ).fetchall()
    return Ledger(value[0] if value else 0, {row[0] for row in hits})
