"""A pool health check for django-health-check 4 (``pip install django-dataflow[healthcheck]``).

Add it to the checks of your health view::

    path("ht/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database",
        "django_dataflow.monitoring.healthcheck.PoolHealth",
        ("django_dataflow.monitoring.healthcheck.PoolHealth", {"alias": "replica"}),
    ]))

It applies the same rules and thresholds as ``manage.py pool_stats --check`` to every
process's pools (``DATAFLOW_CHECK_THRESHOLDS``).
"""

from __future__ import annotations

import dataclasses

try:
    from health_check.base import HealthCheck
    from health_check.exceptions import ServiceUnavailable
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
    """Unavailable when a pool is over the usage, wait-queue or wait-time threshold."""

    alias: str | None = None

    def run(self) -> None:
        problems = health.evaluate(collect(alias=self.alias), conf.check_thresholds())
        if problems:
            raise ServiceUnavailable("; ".join(problem.message for problem in problems))
