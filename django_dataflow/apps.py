"""AppConfig: only wiring. Validates every pooled DATABASES entry at startup."""

from __future__ import annotations

from django.apps import AppConfig


class DjangoDataflowAppConfig(AppConfig):
    name = "django_dataflow"
    verbose_name = "django-dataflow"

    def ready(self) -> None:
        from django_dataflow.startup import validate_pooled_databases

        validate_pooled_databases()
