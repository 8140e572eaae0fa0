"""A pool health check for django-health-check 4 (``pip install django-dataflow[healthcheck]``).

Add it to the checks of your health view::

    path("ht/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database",
        "django_dataflow.monitoring.healthcheck.PoolHealth",
        ("django_dataflow.monitoring.healthcheck.PoolHealth", {"alias": "replica"}),
    ]))

It is a readiness check: "Unavailable" only when the pools stop service (checkouts
timed out, connections failed in the last minute); a pool over a threshold of
``manage.py pool_stats --check`` (``DATAFLOW_CHECK_THRESHOLDS``: usage, waiters, slow
waits) is a "Warning", which keeps the instance in rotation.
"""

from __future__ import annotations

import dataclasses

try:
    from health_check.base import HealthCheck
    from health_check.exceptions import ServiceUnavailable, ServiceWarning
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "django_dataflow.monitoring.healthcheck needs django-health-check 4: "
        "pip install 'django-dataflow[healthcheck]'"
    ) from error

from django_dataflow import conf
from django_dataflow.monitoring import health
from django_dataflow.monitoring.aggregate import collect


@dataclasses.dataclass
class PoolHealth(HealthCheck):
    """Unavailable when checkouts time out or connections fail; a warning when a pool is
    over the usage, wait-queue or wait-time threshold."""

    alias: str | None = None

    def run(self) -> None:
        report = collect(alias=self.alias)
        failures = health.failures(report)
        if failures:
            raise ServiceUnavailable("; ".join(problem.message for problem in failures))
        busy = health.evaluate(report, conf.check_thresholds())
        if busy:
            raise ServiceWarning("; ".join(problem.message for problem in busy))
