"""Django's test suite on MySQL/MariaDB (stock or django_dataflow engine, see common.py)."""

from __future__ import annotations

import os

from djsuite_settings.common import *  # noqa: F403
from djsuite_settings.common import database, db_name


def _mysql(alias: str) -> dict:
    return database(
        "mysql",
        NAME=db_name(alias),
        USER=os.environ.get("MYSQL_USER", "root"),
        PASSWORD=os.environ.get("MYSQL_PASSWORD", ""),
        HOST=os.environ.get("MYSQL_HOST", "127.0.0.1"),
        PORT=os.environ.get("MYSQL_PORT", "3306"),
        TEST={"CHARSET": "utf8mb4"},
    )


DATABASES = {"default": _mysql("default"), "other": _mysql("other")}
