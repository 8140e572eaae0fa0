"""The public path of ``DataFlowRouter`` for ``DATABASE_ROUTERS`` (``routing/router.py``)."""

from django_dataflow.routing.router import DataFlowRouter  # noqa: F401
