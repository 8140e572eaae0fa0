"""Starting real servers on the small project of these tests, and asking the database server
how our sessions ended."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
PY = sys.executable
# The servers' logs on a Debian machine (the development machine and CI); elsewhere the
# tests that read them skip, except in CI, where they fail (see ServerLog).
MARIADB_LOG = Path("/var/log/mysql/error.log")
PG_LOGS = sorted(Path("/var/log/postgresql").glob("postgresql-*-main.log"))
PG_LOG = PG_LOGS[-1] if PG_LOGS else Path("/var/log/postgresql/postgresql-main.log")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port: int, path: str, timeout: float = 30.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            body = r.read()
            try:
                return r.status, json.loads(body)
            except ValueError:
                return r.status, body
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, urllib.error.URLError) as error:
        return 0, str(error)


def environment(vendor: str, database: str, stats_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROCS_", "DATAFLOW_"))
    }
    env.update(
        {f"PROCS_SERVER_{key}": str(value) for key, value in server_entry(vendor).items()}
        if vendor in ("postgresql", "mysql")
        else {}
    )
    env.update(
        DJANGO_SETTINGS_MODULE="tests.integration.processes.webproject.settings",
        PROCS_VENDOR=vendor,
        PROCS_DB=database,
        DATAFLOW_STATS_DIR=str(stats_dir),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pool_stats(env: dict[str, str]) -> dict[str, Any]:
    result = manage(env, "pool_stats", "--format", "json")
    assert result.returncode in (0, 2), result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


class Server:
    """A server child process in its own session, stopped with its group (shared with
    tests/integration/reliability/webserver.py, whose servers answer on another path)."""

    ready_path = "/whoami/"

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if get(self.port, self.ready_path, timeout=2)[0] == 200:
                return
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"the server did not start: {self.output()[-3000:]}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()  # anything left in the group
        return self.process.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the group we started
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if not self._log_file.closed:
            self._log_file.close()


def gunicorn(port: int, *extra: str, worker_class: str = "sync", workers: int = 1) -> list[str]:
    return [
        PY,
        "-m",
        "gunicorn",
        "tests.integration.processes.webproject.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--graceful-timeout",
        "15",
        "--log-level",
        "warning",
        *extra,
    ]


def uvicorn(port: int, workers: int = 2, log_level: str = "warning") -> list[str]:
    return [
        PY,
        "-m",
        "uvicorn",
        "tests.integration.processes.webproject.asgi:application",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--workers",
        str(workers),
        "--log-level",
        log_level,
        "--no-access-log",
    ]


# -- the database server's view ------------------------------------------------------------


class ServerLog:
    """The part of the database server's log written from now on."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.path = {"mysql": MARIADB_LOG, "postgresql": PG_LOG}[vendor]
        if not os.access(self.path, os.R_OK):
            message = f"the database server's log {self.path} cannot be read here"
            if os.environ.get("CI"):
                raise AssertionError(message)
            import pytest

            pytest.skip(message)
        self.offset = self.path.stat().st_size

    def text(self) -> str:
        if self.path is None or not self.path.exists():
            return ""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode(errors="replace")

    def unclean_ends(self, sessions: set[int]) -> dict[int, str]:
        """Sessions among ``sessions`` that the server saw end without a goodbye
        (MariaDB: "Aborted connection N"; PostgreSQL, with our sessions at DEBUG1:
        "unexpected EOF on client connection")."""
        found = {}
        for line in self.text().splitlines():
            if self.vendor == "mysql":
                match = re.search(r"Aborted connection (\d+) ", line)
            else:
                match = re.search(r"\[(\d+)\] .*unexpected EOF on client connection", line)
            if match and int(match.group(1)) in sessions:
                found[int(match.group(1))] = line.strip()
        return found


def server_entry(vendor: str) -> dict[str, Any]:
    """Host, port and credentials of the test server of ``vendor``: the suite's own
    (tests/dbsettings/base.py: the environment, with the local defaults)."""
    from tests.dbsettings.base import mysql_settings, postgresql_settings

    entry = postgresql_settings() if vendor == "postgresql" else mysql_settings()
    return {key: entry[key] for key in ("HOST", "PORT", "USER", "PASSWORD")}


@contextlib.contextmanager
def admin_connection(vendor: str):
    """An autocommit connection to the server of ``vendor`` (not to a test database)."""
    entry = server_entry(vendor)
    if vendor == "postgresql":
        import psycopg

        connection = psycopg.connect(
            host=entry["HOST"],
            port=entry["PORT"],
            user=entry["USER"],
            password=entry["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        )
    else:
        import MySQLdb

        connection = MySQLdb.connect(
            host=entry["HOST"],
            port=int(entry["PORT"]),
            user=entry["USER"],
            password=entry["PASSWORD"],
        )
        connection.autocommit(True)
    try:
        yield connection.cursor()
    finally:
        connection.close()


def live_sessions(vendor: str, sessions: set[int]) -> set[int]:
    """Which of ``sessions`` the server still has."""
    if not sessions:
        return set()
    with admin_connection(vendor) as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT pid FROM pg_stat_activity")
        else:
            cursor.execute("SELECT ID FROM information_schema.PROCESSLIST")
        rows = cursor.fetchall()
    return {row[0] for row in rows} & sessions


def wait_gone(vendor: str, sessions: set[int], timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = live_sessions(vendor, sessions)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
