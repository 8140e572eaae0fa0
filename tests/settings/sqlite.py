"""Run the test suite against sqlite: `pytest --ds=tests.settings.sqlite`."""

import os

from tests.settings.base import *  # noqa: F403
from tests.settings.base import BASE_DIR, sqlite_settings

DATABASE_VENDOR = "sqlite"
DATABASES = {
    "default": sqlite_settings(),
    # A second alias on the same server, for tests that need two pools.
    "other": sqlite_settings(
        NAME=str(BASE_DIR / ".cache" / "other.sqlite3"),
        TEST={"NAME": str(BASE_DIR / ".cache" / f"test_other_{os.getpid()}.sqlite3")},
    ),
}
