"""The public path of ``ReadYourWritesMiddleware`` (``routing/middleware.py``)."""

from django_dataflow.routing.middleware import ReadYourWritesMiddleware  # noqa: F401
