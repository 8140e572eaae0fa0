"""Django's test suite on PostgreSQL (stock or django_dataflow engine, see common.py)."""

from __future__ import annotations

import os

from djsuite_settings.common import *  # noqa: F403
from djsuite_settings.common import database, db_name


def _postgresql(alias: str) -> dict:
    return database(
        "postgresql",
        NAME=db_name(alias),
        USER=os.environ.get("POSTGRES_USER", "postgres"),
        PASSWORD=os.environ.get("POSTGRES_PASSWORD", ""),
        HOST=os.environ.get("POSTGRES_HOST", "127.0.0.1"),
        PORT=os.environ.get("POSTGRES_PORT", "5432"),
    )


DATABASES = {"default": _postgresql("default"), "other": _postgresql("other")}
