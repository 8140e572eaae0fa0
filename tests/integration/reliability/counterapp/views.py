"""Views the web-server scenarios add to the example project."""

from __future__ import annotations

import os

from django.http import HttpRequest, JsonResponse

from tests.integration.reliability.counterapp.ledger import record_request


def hit(request: HttpRequest) -> JsonResponse:
    """Count one request in the ledger; say which process and server session did it."""
    session = record_request(request.GET["counter"], request.GET["id"], "default")
    return JsonResponse({"pid": os.getpid(), "session": session})


def whoami(request: HttpRequest) -> JsonResponse:
    """The serving process, without touching the database (a readiness probe)."""
    return JsonResponse({"pid": os.getpid()})
