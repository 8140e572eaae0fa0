"""Fixtures for tests that build pooled entries and ask the real server of this run."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connections
from django.db.utils import load_backend

SCHEMES = {"postgresql": "postgres", "mysql": "mysql"}


@pytest.fixture
def server_url(vendor):
    """A DATABASE_URL for this run's test database (with ``query`` appended), built from
    the ``default`` entry, as a deployment would write it."""

    def build(query: str = "") -> str:
        entry = connections["default"].settings_dict
        if vendor == "sqlite":
            return f"sqlite:///{entry['NAME']}{query}"
        auth = quote(entry["USER"], safe="")
        if entry["PASSWORD"]:
            auth += ":" + quote(entry["PASSWORD"], safe="")
        return f"{SCHEMES[vendor]}://{auth}@{entry['HOST']}:{entry['PORT']}/{entry['NAME']}{query}"

    return build


@pytest.fixture
def wrapper_for():
    """A DatabaseWrapper for a DATABASES entry, with Django's defaults filled in. Every
    wrapper made is closed after the test (the session fixture closes the pools)."""
    made = []

    def build(entry: dict[str, Any], alias: str = "cfg") -> Any:
        configured = connections.configure_settings({"default": copy.deepcopy(entry)})["default"]
        wrapper = load_backend(configured["ENGINE"]).DatabaseWrapper(configured, alias)
        made.append(wrapper)
        return wrapper

    yield build
    for wrapper in made:
        wrapper.close()
