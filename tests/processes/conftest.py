"""Fixtures of the process-lifecycle tests: the vendor of this run and a database of
our own (unique suffix), dropped afterwards."""

from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings

from tests.processes import harness


@pytest.fixture
def vendor() -> str:
    return getattr(settings, "DATABASE_VENDOR", "sqlite")


@pytest.fixture
def server_vendor(vendor: str) -> str:
    if vendor not in ("postgresql", "mysql"):
        pytest.skip("needs a database server (run with tests.settings.postgresql or .mysql)")
    return vendor


@pytest.fixture
def database(vendor: str, tmp_path):
    name = f"procs_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    if vendor in ("postgresql", "mysql"):
        quoted = f'"{name}"' if vendor == "postgresql" else f"`{name}`"
        with harness.admin_connection(vendor) as cursor:
            cursor.execute(f"CREATE DATABASE {quoted}")
        yield name
        with harness.admin_connection(vendor) as cursor:
            force = " WITH (FORCE)" if vendor == "postgresql" else ""
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted}{force}")
    else:
        yield str(tmp_path / f"{name}.sqlite3")


@pytest.fixture
def stats_dir(tmp_path):
    path = tmp_path / "stats"
    return path


@pytest.fixture
def servers():
    started: list[harness.Server] = []
    yield started
    for server in started:
        server.kill()
