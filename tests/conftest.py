"""Test-session wiring: which tests need no database server (the ``unit`` marker), and
is the database server of this run reachable?

In CI (the ``CI`` environment variable is set) an unreachable PostgreSQL or MariaDB
fails the run. A developer without the server gets every database test skipped, with a
message saying which server was missing and how to start it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db.backends.signals import connection_created

from django_dataflow import hooks as hooks_module
from django_dataflow import signals as dataflow_signals

START_HINTS = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect <version> main start",
    "mysql": 'start-stop-daemon --start --oknodo --background --exec "$(command -v mariadbd)"',
}


def _server_error(vendor: str) -> str | None:
    """None if the server of ``vendor`` answers, else the connection error."""
    entry = settings.DATABASES["default"]
    try:
        if vendor == "postgresql":
            import psycopg

            psycopg.connect(
                host=entry["HOST"],
                port=entry["PORT"],
                user=entry["USER"],
                password=entry["PASSWORD"],
                dbname="postgres",
                connect_timeout=5,
            ).close()
        elif vendor == "mysql":
            import MySQLdb

            MySQLdb.connect(
                host=entry["HOST"],
                port=int(entry["PORT"]),
                user=entry["USER"],
                password=entry["PASSWORD"],
                connect_timeout=5,
            ).close()
    except Exception as error:  # any failure means: not usable for this run
        return str(error).strip() or type(error).__name__
    return None


# The tests that need no database server, by path under tests/ (a directory ends with
# "/"). They get the ``unit`` marker: bin/test runs them once (``-m unit``), and the
# per-vendor steps leave them out (``-m "not unit"``).
UNIT_TESTS = (
    "pool/",
    "settings/",
    "checks/test_settings_checks.py",
    "monitoring/test_stats",
    "docs/",
    "benchmarks/",
    "layout/",
)
TESTS = Path(__file__).resolve().parent


def pytest_itemcollected(item):
    path = item.path.resolve()
    if path.is_relative_to(TESTS) and path.relative_to(TESTS).as_posix().startswith(UNIT_TESTS):
        item.add_marker(pytest.mark.unit)


def pytest_collection_modifyitems(config, items):
    vendor = getattr(settings, "DATABASE_VENDOR", "sqlite")
    error = _server_error(vendor)
    if error is None:
        return
    message = (
        f"The {vendor} server of this test run is unreachable ({error}). "
        f"Start it with: {START_HINTS.get(vendor, '')}"
    )
    if os.environ.get("CI"):
        raise pytest.UsageError(message)
    skip = pytest.mark.skip(reason=message)
    for item in items:
        if item.get_closest_marker("django_db"):
            item.add_marker(skip)


@pytest.fixture
def vendor() -> str:
    return settings.DATABASE_VENDOR


@pytest.fixture
def server_vendor(vendor: str) -> str:
    """The vendor of this run, for a test that needs a database server: skipped on SQLite."""
    if vendor == "sqlite":
        pytest.skip("needs a database server (run with tests.dbsettings.postgresql or .mysql)")
    return vendor


@pytest.fixture(autouse=True)
def _fresh_pools():
    """Every test starts with no pools and leaves none behind, so stats are its own."""
    from django.db import connections

    from django_dataflow.pool import registry

    yield
    connections.close_all()
    registry.close_pools()


@pytest.fixture
def restore_hooks():
    """Receivers of the lifecycle signals and ``connection_created``, and error
    handlers, registered during a test are removed after it."""
    signals = [getattr(dataflow_signals, name) for name in dataflow_signals.__all__]
    signals.append(connection_created)
    before = {signal: list(signal.receivers) for signal in signals}
    handlers = list(hooks_module._error_handlers)
    yield
    for signal, receivers in before.items():
        signal.receivers[:] = receivers
        signal.sender_receivers_cache.clear()
    hooks_module._error_handlers[:] = handlers
