"""URLs of the monitoring views: ``path("dataflow/", include("django_dataflow.urls"))``.

* ``pool-stats/`` — every process's pools, JSON (or ``?format=prometheus``); staff or token
* ``metrics/``    — the same as Prometheus text, for scrapers; staff or token
* ``health/``     — ``{"status": "ok"}`` or 503 with the problems; public
"""

from __future__ import annotations

from django.urls import path

from django_dataflow.monitoring import views

app_name = "django_dataflow"

urlpatterns = [
    path("pool-stats/", views.pool_stats_view, name="pool_stats"),
    path("metrics/", views.metrics_view, name="metrics"),
    path("health/", views.health_view, name="health"),
]
