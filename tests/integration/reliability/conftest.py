"""Fixtures of the reliability scenarios: dedicated servers, this run's databases, and
the figures each scenario measured.

The scenarios run only under their own settings (``--ds=tests.integration.reliability.settings``);
under any other settings this directory is not collected, so the backend steps of
bin/test, which collect ``tests``, do not pick them up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[3]
FIGURES = ROOT / ".cache" / "reliability" / "figures.json"

if "tests.integration.reliability.counterapp" not in settings.INSTALLED_APPS:
    collect_ignore_glob = ["*.py", "*/*.py"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reliability: a production scenario on real servers (docs/reliability.md)"
    )


# -- servers and databases ---------------------------------------------------------------


def _bring_up(server: Any) -> Any:
    from tests.integration.reliability.servers import ServerError

    try:
        started = server.up()
    except (ServerError, OSError) as error:
        pytest.fail(f"{server.name} could not be started: {error}")
    yield server
    if started:
        server.down()


@pytest.fixture(scope="session")
def dedicated_postgres():
    from tests.integration.reliability.servers import DedicatedPostgres

    yield from _bring_up(DedicatedPostgres())


@pytest.fixture(scope="session")
def dedicated_mariadb():
    from tests.integration.reliability.servers import DedicatedMariaDB

    yield from _bring_up(DedicatedMariaDB())


@pytest.fixture(scope="session")
def pgbouncer(dedicated_postgres):
    from tests.integration.reliability.servers import PgBouncer

    yield from _bring_up(PgBouncer())


def _create_tables(alias: str) -> None:
    from django.db import connections

    from tests.integration.reliability.counterapp.models import Counter, Hit

    wrapper = connections[alias]
    existing = set(wrapper.introspection.table_names())
    with wrapper.schema_editor() as editor:
        for model in (Counter, Hit):
            if model._meta.db_table not in existing:
                editor.create_model(model)
    wrapper.close()


def _close_pools() -> None:
    from django.db import connections

    from django_dataflow.pool import registry

    connections.close_all()
    registry.close_pools()


@pytest.fixture(scope="session")
def run_databases(dedicated_postgres, dedicated_mariadb, django_db_blocker):
    """This run's database on each dedicated server, with the ledger's tables."""
    name = settings.RUN_DATABASE
    with dedicated_postgres.connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    admin = dedicated_mariadb.connect()
    admin.cursor().execute(f"CREATE OR REPLACE DATABASE {name}")
    admin.close()
    with django_db_blocker.unblock():
        _create_tables("pg_restart")
        _create_tables("maria_restart")
        _close_pools()
    yield name
    _close_pools()
    if dedicated_postgres.accepting():
        with dedicated_postgres.connect() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if dedicated_mariadb.accepting():
        admin = dedicated_mariadb.connect()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


@pytest.fixture
def db_access(run_databases, django_db_blocker):
    """Database access for the test and its threads (no pytest-django test database:
    the scenarios use the dedicated servers' databases of this run)."""
    with django_db_blocker.unblock():
        yield run_databases
        _close_pools()


@pytest.fixture(scope="session")
def web_database(dedicated_postgres, tmp_path_factory):
    """The example project's database on the dedicated PostgreSQL, migrated and seeded
    with users, for the web-server and Celery scenarios (which run it in other
    processes)."""
    from tests.integration.reliability import webserver

    name = f"{settings.RUN_DATABASE}_web"
    with dedicated_postgres.connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    env = webserver.environment(webserver.database_url(name), tmp_path_factory.mktemp("stats"))
    webserver.manage(env, "migrate", "--verbosity", "0")
    webserver.manage(env, "seed_users", "--count", "200")
    yield name
    if dedicated_postgres.accepting():
        with dedicated_postgres.connect() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- figures -----------------------------------------------------------------------------


class Figures:
    """What the scenarios measured, printed at the end of the run and kept in
    .cache/reliability/figures.json for docs/reliability.md."""

    def __init__(self) -> None:
        self.scenarios: dict[str, dict[str, Any]] = {}

    def record(self, scenario: str, **numbers: Any) -> None:
        self.scenarios.setdefault(scenario, {}).update(numbers)


_figures = Figures()


@pytest.fixture
def figures() -> Figures:
    return _figures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _figures.scenarios:
        return
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(_figures.scenarios, indent=2, sort_keys=True) + "\n")
    terminalreporter.section("reliability figures")
    for scenario, numbers in _figures.scenarios.items():
        shown = ", ".join(f"{key}={_shown(value)}" for key, value in numbers.items())
        terminalreporter.write_line(f"{scenario}: {shown}")
    terminalreporter.write_line(f"(kept in {FIGURES.relative_to(ROOT)})")


def _shown(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
