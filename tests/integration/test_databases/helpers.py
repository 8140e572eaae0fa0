"""Run a probe in a subprocess with probe_settings.py, on a scratch database.

The probe's settings and the scratch databases both come from tests/dbsettings/base.py
(the environment, with the local defaults), not from the running test's own settings:
the probe is a project of its own, also when the suite runs behind PgBouncer.

Test-database setup (``DiscoverRunner.setup_databases()``) changes the settings of the
whole process and creates databases; pytest-django has already done it in this one, so
each probe runs it in a fresh process and prints what it saw as one JSON line.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

from tests.dbsettings.base import BASE_DIR
from tests.integration.processes.harness import admin_connection


def probe_environment(vendor: str, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.integration.test_databases.probe_settings",
        PROBE_VENDOR=vendor,
        PROBE_DB=database,
        PYTHONPATH=os.pathsep.join(filter(None, [str(BASE_DIR), os.environ.get("PYTHONPATH")])),
    )
    return env


def run_probe(module: str, vendor: str, database: str, *args: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", f"tests.integration.test_databases.{module}", *args],
        cwd=BASE_DIR,
        env=probe_environment(vendor, database),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _drop(vendor: str, name: str) -> None:
    if vendor == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{BASE_DIR / '.cache' / name}.sqlite3{suffix}")
        return
    with admin_connection(vendor) as cursor:
        if vendor == "postgresql":
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@contextlib.contextmanager
def scratch_database(vendor: str, name: str):
    """An empty database ``name`` (a file for SQLite), dropped afterwards with the
    ``test_<name>`` that Django may leave behind."""
    _drop(vendor, name)
    if vendor != "sqlite":
        with admin_connection(vendor) as cursor:
            quoted = f'"{name}"' if vendor == "postgresql" else f"`{name}`"
            cursor.execute(f"CREATE DATABASE {quoted}")
    try:
        yield name
    finally:
        _drop(vendor, name)
        _drop(vendor, f"test_{name}")
