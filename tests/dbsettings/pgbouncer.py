"""Run the PostgreSQL tests through PgBouncer in transaction mode.

    bin/reliability-servers up pgbouncer
    pytest --ds=tests.dbsettings.pgbouncer \
        -p tests.integration.reliability.pgbouncer_plugin tests ...

PgBouncer (started by ``bin/reliability-servers``, port 6440, in front of the shared
PostgreSQL) hands every transaction to whichever server session is free. The documented
settings for that (docs/troubleshooting.md#pgbouncer) are what this module adds to the
PostgreSQL settings: ``behind_transaction_pooler`` (no prepared statements) and
``DISABLE_SERVER_SIDE_CURSORS``. docs/reliability.md says what breaks without them.
"""

import os

from tests.dbsettings.base import *  # noqa: F403
from tests.dbsettings.base import TEST_POOL, postgresql_settings

PGBOUNCER_PORT = os.environ.get("DATAFLOW_RELIABILITY_PGBOUNCER_PORT", "6440")


def through_pgbouncer(**overrides):
    return postgresql_settings(
        PORT=PGBOUNCER_PORT,
        POOL={**TEST_POOL, "behind_transaction_pooler": True, "statement_cache_size": 0},
        DISABLE_SERVER_SIDE_CURSORS=True,
        **overrides,
    )


DATABASE_VENDOR = "postgresql"
DATABASES = {
    "default": through_pgbouncer(),
    # A second alias on the same server, for tests that need two pools.
    "other": through_pgbouncer(),
}
