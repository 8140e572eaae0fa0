"""Run the test suite against sqlite: `pytest --ds=tests.dbsettings.sqlite`."""

import os

from tests.dbsettings.base import *  # noqa: F403
from tests.dbsettings.base import BASE_DIR, sqlite_settings

DATABASE_VENDOR = "sqlite"
DATABASES = {
    "default": sqlite_settings(),
    # A second alias on the same server, for tests that need two pools.
    "other": sqlite_settings(
        NAME=str(BASE_DIR / ".cache" / "other.sqlite3"),
        TEST={"NAME": str(BASE_DIR / ".cache" / f"test_other_{os.getpid()}.sqlite3")},
    ),
}
