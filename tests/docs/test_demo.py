"""``bin/demo``, the README's first command: it must pass with no database server, on
SQLite, in under a minute."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
TIME_LIMIT = 60.0


@pytest.mark.slow
def test_the_demo_runs_on_sqlite_in_under_a_minute(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REPLICA_URL", "ANALYTICS_URL")
    }
    # The interpreter running the tests has everything installed: the demo skips its
    # install step.
    env["VENV"] = sys.prefix
    env["DATABASE_URL"] = f"sqlite:///{database}"

    started = time.monotonic()
    result = subprocess.run(
        [str(REPO / "bin" / "demo")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        check=False,
    )
    elapsed = time.monotonic() - started

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert elapsed < TIME_LIMIT
    assert database.is_file()
    assert "Created 1000 demo users; 1000 in all, 900 of them active." in output
    assert "pool_loadtest: 100 requests on 50 threads" in output
    assert "Average response time:" in output
    assert "Errors:         0" in output
    assert "Pool stats for 'default' (sqlite):" in output
    # pool_stats, in its own process, sees the pool of the site the demo ran meanwhile.
    assert "==> manage.py pool_stats" in output
    assert "default (1 process)" in output
