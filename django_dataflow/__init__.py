"""django-dataflow: managed database connection pooling for Django.

Point a DATABASES entry at ``django_dataflow.backends.postgresql``, ``.mysql`` or
``.sqlite3`` and describe the pool in its ``"POOL"`` dict. See docs/ for the rest.

The public names below are imported on first use (PEP 562): importing
``django_dataflow`` (for ``DataFlowConfig`` in a settings file, say) imports neither the
pool engine nor Django's database layer, and starts nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# Public name -> the module that defines it.
_HOMES = {
    "ActiveConnection": "django_dataflow.api",
    "DataFlow": "django_dataflow.api",
    "DataFlowConfig": "django_dataflow.settings.dataflow_config",
    "HookError": "django_dataflow.errors",
    "PoolClosed": "django_dataflow.errors",
    "PoolTimeout": "django_dataflow.errors",
    "error_handler": "django_dataflow.hooks",
    "get_active_connections": "django_dataflow.api",
    "get_pool_config": "django_dataflow.settings.sizing",
    "get_pool_stats": "django_dataflow.stats",
    "on_checkin": "django_dataflow.hooks",
    "on_checkout": "django_dataflow.hooks",
    "on_connect": "django_dataflow.hooks",
    "pooled_connection": "django_dataflow.api",
    "pooled_session": "django_dataflow.api",
    "recommended_pool_size": "django_dataflow.settings.sizing",
    "routing_scope": "django_dataflow.routing.context",
    "use_analytics": "django_dataflow.routing.context",
    "use_database": "django_dataflow.routing.context",
    "use_primary": "django_dataflow.routing.context",
    "use_replica": "django_dataflow.routing.context",
}
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
    "pooled_session",
    "recommended_pool_size",
    "routing_scope",
    "use_analytics",
    "use_database",
    "use_primary",
    "use_replica",
]

if TYPE_CHECKING:
    from django_dataflow.api import (
        ActiveConnection,
        DataFlow,
        get_active_connections,
        pooled_connection,
        pooled_session,
    )
    from django_dataflow.errors import HookError, PoolClosed, PoolTimeout
    from django_dataflow.hooks import error_handler, on_checkin, on_checkout, on_connect
    from django_dataflow.routing.context import (
        routing_scope,
        use_analytics,
        use_database,
        use_primary,
        use_replica,
    )
    from django_dataflow.settings.dataflow_config import DataFlowConfig
    from django_dataflow.settings.sizing import get_pool_config, recommended_pool_size
    from django_dataflow.stats import get_pool_stats


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'django_dataflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
