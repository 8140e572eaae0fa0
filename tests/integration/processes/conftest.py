"""Fixtures of the process-lifecycle tests: a database of our own (unique suffix),
dropped afterwards, and the servers started."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.integration.processes import harness


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
