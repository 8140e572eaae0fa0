"""HTTP views: pool statistics (JSON or Prometheus text) and a plain JSON health view.

The statistics view shows every process's pools, so it is for staff only, or for a
scraper presenting ``Authorization: Bearer <DATAFLOW_METRICS_TOKEN>``. The health view
says only "ok" or what is wrong, for load balancers and uptime checks (GET or HEAD); it
needs no login.

Wire them with ``path("dataflow/", include("django_dataflow.urls"))``.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from django_dataflow import conf
from django_dataflow.monitoring import health
from django_dataflow.monitoring.aggregate import collect, report_to_json

try:  # prometheus_client is optional: without it, the Prometheus text answers 501
    from django_dataflow.monitoring import prometheus
except ImportError as missing:
    prometheus_missing: str | None = str(missing)
else:
    prometheus_missing = None

PROMETHEUS_TYPES = ("text/plain", "application/openmetrics-text")


def has_access(request: HttpRequest) -> bool:
    """Staff users, and bearers of ``settings.DATAFLOW_METRICS_TOKEN``."""
    token = conf.metrics_token()
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        ):
            return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def _denied(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(
        {"error": "Pool statistics are for staff users or holders of the metrics token."},
        status=403 if getattr(getattr(request, "user", None), "is_authenticated", False) else 401,
    )
    if response.status_code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="django-dataflow"'
    return response


def _wants_prometheus(request: HttpRequest, default: str) -> bool:
    wanted = request.GET.get("format")
    if wanted:
        return wanted == "prometheus"
    if default == "prometheus":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" not in accept and any(t in accept for t in PROMETHEUS_TYPES)


def _stats(request: HttpRequest, default: str) -> HttpResponse:
    if not has_access(request):
        return _denied(request)
    alias = request.GET.get("database") or None
    report = collect(alias=alias)
    if _wants_prometheus(request, default):
        if prometheus_missing is not None:
            return JsonResponse({"error": prometheus_missing}, status=501)
        return HttpResponse(
            prometheus.exposition(report), content_type=prometheus.CONTENT_TYPE_LATEST
        )
    return JsonResponse(report_to_json(report), json_dumps_params={"indent": 2})


@never_cache
@require_safe
def pool_stats_view(request: HttpRequest) -> HttpResponse:
    """JSON by default; Prometheus text with ``?format=prometheus`` or an ``Accept``
    header asking for it. ``?database=ALIAS`` keeps one alias."""
    return _stats(request, "json")


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text, for a scrape config that cannot add query parameters."""
    return _stats(request, "prometheus")


@never_cache
@require_safe
def health_view(request: HttpRequest) -> JsonResponse:
    """A readiness probe (GET or HEAD): 503 ``{"status": "unhealthy", "problems": [...]}``
    when the pools stop service (timeouts, failed connections in the last minute); 200
    otherwise, ``{"status": "warning", "warnings": [...]}`` when a pool is busy (over a
    threshold of ``pool_stats --check``), else ``{"status": "ok"}``. It reads, never
    writes, and never waits for a lock."""
    report = collect()
    problems = health.failures(report)
    warnings = health.evaluate(report, conf.check_thresholds())
    body: dict[str, Any] = {
        "status": "unhealthy" if problems else "warning" if warnings else "ok",
        "problems": [problem.message for problem in problems],
        "warnings": [problem.message for problem in warnings],
        "processes": report.process_count,
    }
    return JsonResponse(body, status=503 if problems else 200)
