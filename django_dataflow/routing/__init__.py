"""Read / write / analytics routing across a primary, its replicas and analytics
databases.

* ``context``: ``use_primary`` / ``use_replica`` / ``use_analytics`` / ``use_database``
  and ``routing_scope`` (what the code asks for);
* ``config``: ``DATAFLOW_ROUTING``, parsed and checked;
* ``health``: which replicas are reachable and fresh enough;
* ``router``: ``DataFlowRouter`` (``DATABASE_ROUTERS``);
* ``middleware``: ``ReadYourWritesMiddleware``.

See docs/routing.md.
"""

from __future__ import annotations

from django_dataflow.routing.context import (
    routing_scope,
    use_analytics,
    use_database,
    use_primary,
    use_replica,
)

__all__ = ["routing_scope", "use_analytics", "use_database", "use_primary", "use_replica"]
