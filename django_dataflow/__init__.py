"""django-dataflow: managed database connection pooling for Django.

Point a DATABASES entry at ``django_dataflow.backends.postgresql``, ``.mysql`` or
``.sqlite3`` and describe the pool in its ``"POOL"`` dict. See docs/ for the rest.
"""

from __future__ import annotations

from django_dataflow.active import ActiveConnection, get_active_connections
from django_dataflow.checkout import pooled_connection
from django_dataflow.config import DataFlowConfig, get_pool_config, recommended_pool_size
from django_dataflow.errors import HookError, PoolClosed, PoolTimeout
from django_dataflow.facade import DataFlow
from django_dataflow.hooks import error_handler, on_checkin, on_checkout, on_connect
from django_dataflow.routing import (
    routing_scope,
    use_analytics,
    use_database,
    use_primary,
    use_replica,
)
from django_dataflow.stats import get_pool_stats

__all__ = [
    "ActiveConnection",
    "DataFlow",
    "DataFlowConfig",
    "HookError",
    "PoolClosed",
    "PoolTimeout",
    "error_handler",
    "get_active_connections",
    "get_pool_config",
    "get_pool_stats",
    "on_checkin",
    "on_checkout",
    "on_connect",
    "pooled_connection",
    "recommended_pool_size",
    "routing_scope",
    "use_analytics",
    "use_database",
    "use_primary",
    "use_replica",
]
__version__ = "0.1.0.dev0"
