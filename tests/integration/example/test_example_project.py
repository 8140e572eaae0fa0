"""The example project on the server of this run, with a replica and an analytics
database: settings from DATABASE_URL / REPLICA_URL / ANALYTICS_URL, migrations, the seed
command, and pool_loadtest through the router and through the views.

The three URLs point at one database (``example_site`` on PostgreSQL and MariaDB, a file
on SQLite), so the replica has the primary's data; the router does not know that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings

from tests.backends.helpers import admin_cursor

REPO = Path(__file__).resolve().parents[3]
DATABASE = "example_site"

pytestmark = pytest.mark.django_db  # skipped (or failed in CI) with the run's server down


def server_url(vendor: str) -> str:
    entry = settings.DATABASES["default"]
    scheme = "postgres" if vendor == "postgresql" else "mysql"
    password = f":{quote(entry['PASSWORD'], safe='')}" if entry["PASSWORD"] else ""
    credentials = f"{quote(entry['USER'], safe='')}{password}"
    return f"{scheme}://{credentials}@{entry['HOST']}:{entry['PORT']}/{DATABASE}"


@pytest.fixture
def database_url(vendor: str, tmp_path: Path) -> Any:
    if vendor == "sqlite":
        yield f"sqlite:///{tmp_path / 'example.sqlite3'}"
        return
    drop = f"DROP DATABASE IF EXISTS {DATABASE}"
    with admin_cursor(vendor) as cursor:
        cursor.execute(drop)
        cursor.execute(f"CREATE DATABASE {DATABASE}")
    yield server_url(vendor)
    with admin_cursor(vendor) as cursor:
        cursor.execute(drop)


def manage(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REPLICA_URL", "ANALYTICS_URL")
    }
    env.update(DATABASE_URL=url, REPLICA_URL=url, ANALYTICS_URL=url)
    result = subprocess.run(
        [sys.executable, "example_project/manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def loadtest(url: str, *args: str) -> dict[str, Any]:
    result = manage(url, "pool_loadtest", "--json", "--threads", "20", "--requests", "60", *args)
    return json.loads(result.stdout)


def test_the_example_site_splits_reads_writes_and_analytics(database_url: str) -> None:
    manage(database_url, "migrate", "--verbosity", "0")
    seeded = manage(database_url, "seed_users", "--count", "300")
    assert "Created 300 demo users; 300 in all, 270 of them active." in seeded.stdout

    # The guide's query: a read, so the router sends it to the replica's pool, which
    # has the guide's read-replica size.
    report = loadtest(database_url)
    assert report["errors"] == 0
    assert "accounts.User where is_active=True, first 100" in report["work"]
    assert list(report["pool_stats"]) == ["replica"]
    replica = report["pool_stats"]["replica"]
    assert (replica["pool_size"], replica["overflow_max"]) == (40, 60)
    assert replica["checkouts"] == 60

    # The list view, through middleware and the router: replica again.
    report = loadtest(database_url, "--url", "/users/")
    assert report["errors"] == 0
    assert list(report["pool_stats"]) == ["replica"]

    # The team report runs inside use_analytics(): the analytics pool, 5 connections and
    # no overflow, so 20 threads share 5.
    report = loadtest(database_url, "--url", "/users/teams/")
    assert report["errors"] == 0
    assert list(report["pool_stats"]) == ["analytics"]
    analytics = report["pool_stats"]["analytics"]
    assert (analytics["pool_size"], analytics["overflow_max"]) == (5, 0)
    assert report["peak"]["analytics"]["total"] <= 5
