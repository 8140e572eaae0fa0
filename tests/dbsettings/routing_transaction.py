"""The routing tests with transaction-scoped checkout: every entry of the routing settings
with ``POOL["pool_scope"] = "transaction"`` (docs/backends.md, "Transaction scope").

    pytest --ds=tests.dbsettings.routing_transaction tests/routing
"""

from tests.dbsettings.routing import *  # noqa: F403
from tests.dbsettings.routing import DATABASES

for _entry in DATABASES.values():
    _entry["POOL"] = {**_entry["POOL"], "pool_scope": "transaction"}
