"""Fixtures for the monitoring tests: real worker processes and the command run as a
separate process, all against the test database of this run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent.parent
# What the settings modules read to find the database (see tests/dbsettings/base.py).
NAME_VARIABLE = {"postgresql": "POSTGRES_DB", "mysql": "MYSQL_DB"}


class Worker:
    """One ``tests.monitoring.worker`` process."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        line = process.stdout.readline()
        if not line.startswith("ready "):
            process.kill()
            raise AssertionError(f"worker did not start: {line!r} {process.stderr.read()}")
        self.pid = int(line.split()[1])

    def send(self, line: str, expect: str | None = None) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        if expect is not None:
            answer = self.process.stdout.readline().strip()
            assert answer == expect, answer

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()  # our own child, by its handle
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def stats_dir(tmp_path) -> Path:
    return tmp_path / "stats"


@pytest.fixture
def database_name() -> str:
    """The test database (pytest-django's ``test_<NAME>``) the workers must use."""
    return str(connections["default"].settings_dict["NAME"])


@pytest.fixture
def process_env(stats_dir, database_name, vendor) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
        "DATAFLOW_STATS_DIR": str(stats_dir),
        "PYTHONPATH": str(ROOT),
    }
    if vendor in NAME_VARIABLE:
        env[NAME_VARIABLE[vendor]] = database_name
    return env


@pytest.fixture
def spawn_worker(process_env, database_name):
    workers: list[Worker] = []

    def spawn(**options: int) -> Worker:
        argv = [sys.executable, "-m", "tests.monitoring.worker", "--name", database_name]
        for key, value in options.items():
            argv += [f"--{key}", str(value)]
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=process_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        worker = Worker(process)
        workers.append(worker)
        return worker

    yield spawn
    for worker in workers:
        worker.stop()


@pytest.fixture
def pool_stats(process_env):
    """Run ``manage.py pool_stats`` in a process of its own; return the finished process."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "django", "pool_stats", *args],
            cwd=ROOT,
            env={**process_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def as_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
