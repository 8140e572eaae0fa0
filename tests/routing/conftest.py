"""Routing tests need the streaming replica of `bin/replica-up` besides the primary.

Without it, every database test here is skipped locally (with the command to start it)
and the run fails in CI, as the root conftest does for the primary. Under other settings
than tests.dbsettings.routing (a plain `pytest`), this directory is not collected: its
models belong to an app only those settings install.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from tests.routing.helpers import replica_error

if "tests.routing.routingapp" not in settings.INSTALLED_APPS:
    collect_ignore_glob = ["*.py", "routingapp/*"]


def pytest_collection_modifyitems(config, items):
    routing_items = [item for item in items if "tests/routing" in str(item.fspath)]
    if not any(item.get_closest_marker("django_db") for item in routing_items):
        return
    error = replica_error()
    if error is None:
        return
    message = f"The PostgreSQL replica is not streaming ({error}). Start it with: bin/replica-up"
    if os.environ.get("CI"):
        raise pytest.UsageError(message)
    skip = pytest.mark.skip(reason=message)
    for item in routing_items:
        if item.get_closest_marker("django_db"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_routing_state():
    """No test inherits pins, a chosen replica or a down replica from the one before
    (tests run one after another in the same thread and context)."""
    from django_dataflow.routing import context as routing
    from django_dataflow.routing.health import health

    routing.end_scope()
    health.reset()
    yield
    routing.end_scope()
    health.reset()
