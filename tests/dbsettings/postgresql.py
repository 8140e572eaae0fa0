"""Run the test suite against postgresql: `pytest --ds=tests.dbsettings.postgresql`."""

from tests.dbsettings.base import *  # noqa: F403
from tests.dbsettings.base import postgresql_settings

DATABASE_VENDOR = "postgresql"
DATABASES = {
    "default": postgresql_settings(),
    # A second alias on the same server, for tests that need two pools.
    "other": postgresql_settings(),
}
