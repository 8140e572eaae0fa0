"""AppConfig: only wiring. Importing a module of django-dataflow connects nothing;
``ready()`` registers every system check, connects every receiver and installs the
process hooks (close pools at exit, forget the parent's pools after fork).

Configuration problems are reported by the system checks (all at once, with ids), not
raised here; see docs/design.md, "Configuration: errors vs system checks".
"""

from __future__ import annotations

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class DjangoDataflowAppConfig(AppConfig):
    name = "django_dataflow"
    verbose_name = "django-dataflow"

    def ready(self) -> None:
        # Imported here, not at the top: importing django_dataflow (its apps module
        # included) must not import the pool engine or Django's database layer.
        from django_dataflow.backends import base as backends
        from django_dataflow.checks import pool as pool_checks
        from django_dataflow.checks import routing as routing_checks
        from django_dataflow.checks import server as server_checks
        from django_dataflow.monitoring import publisher
        from django_dataflow.pool import registry
        from django_dataflow.routing import router

        pool_checks.register_checks()
        server_checks.register_checks()
        routing_checks.register_checks()
        # The registry's exit handler first: atexit runs the last registered first, and
        # the publisher reads the pools when it retires its snapshot.
        registry.install_process_hooks()
        backends.install_process_hooks()
        router.connect_receivers()
        publisher.install()
        install_opentelemetry()


def install_opentelemetry() -> bool:
    """Create the pools' OpenTelemetry instruments when settings.DATAFLOW_OPENTELEMETRY
    is True (read once, here). Off, nothing is imported and the pools are untouched.
    A wrong value or a missing opentelemetry-api is left to the system checks
    (dataflow.E011, dataflow.E013). Returns whether the instruments exist."""
    from django_dataflow import conf

    try:
        if not conf.opentelemetry_enabled():
            return False
    except ImproperlyConfigured:
        return False
    try:
        from django_dataflow.monitoring import opentelemetry
    except ImportError:
        return False
    opentelemetry.install()
    return True
