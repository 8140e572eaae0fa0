"""Django's test suite on SQLite with file test databases, so that our pool is used.

The files go in DJSUITE_SQLITE_DIR, a fresh directory per run (parallel clones sit beside
them as test_default_1.sqlite3, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

from djsuite_settings.common import *  # noqa: F403
from djsuite_settings.common import database

_DIR = Path(os.environ.get("DJSUITE_SQLITE_DIR") or os.environ.get("TMPDIR", "/tmp"))


def _sqlite_file(alias: str) -> dict:
    return database(
        "sqlite3",
        NAME=str(_DIR / f"{alias}.sqlite3"),
        TEST={"NAME": str(_DIR / f"test_{alias}.sqlite3")},
    )


DATABASES = {"default": _sqlite_file("default"), "other": _sqlite_file("other")}
