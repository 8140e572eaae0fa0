"""Run the test suite against mysql: `pytest --ds=tests.dbsettings.mysql`."""

from tests.dbsettings.base import *  # noqa: F403
from tests.dbsettings.base import mysql_settings

DATABASE_VENDOR = "mysql"
DATABASES = {
    "default": mysql_settings(),
    # A second alias on the same server, for tests that need two pools.
    "other": mysql_settings(),
}
