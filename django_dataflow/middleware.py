"""The public paths of ``ReadYourWritesMiddleware`` (``routing/middleware.py``) and
``ServerTimingMiddleware`` (``monitoring/timing.py``)."""

from django_dataflow.monitoring.timing import ServerTimingMiddleware  # noqa: F401
from django_dataflow.routing.middleware import ReadYourWritesMiddleware  # noqa: F401
