"""AppConfig: only wiring. Registers the system checks and the
statistics publisher.

Configuration problems are reported by the system checks (all at once, with ids), not
raised here; see docs/design.md, "Configuration: errors vs system checks".
"""

from __future__ import annotations

from django.apps import AppConfig


class DjangoDataflowAppConfig(AppConfig):
    name = "django_dataflow"
    verbose_name = "django-dataflow"

    def ready(self) -> None:
        from django.core.checks import Tags, register

        from django_dataflow import checks, routing_checks  # noqa: F401 (registers)
        from django_dataflow.monitoring import publisher

        register(checks.check_pool_settings, "dataflow")
        register(checks.check_worker_processes, "dataflow")
        register(checks.check_ignored_pool_settings, "dataflow")
        register(checks.check_monitoring_settings, "dataflow")
        register(checks.check_server_limits, "dataflow", Tags.database)
        publisher.install()
