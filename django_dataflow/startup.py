"""Fail at startup, not at the first request, when a pooled DATABASES entry is wrong."""

from __future__ import annotations

from django.conf import settings

from django_dataflow.options import resolve_pool_options

ENGINE_PREFIX = "django_dataflow.backends."
VENDOR_OF_ENGINE = {"postgresql": "postgresql", "mysql": "mysql", "sqlite3": "sqlite"}


def pooled_vendor(engine: str) -> str | None:
    """The vendor of one of our ENGINE paths, or None for any other ENGINE."""
    if not engine.startswith(ENGINE_PREFIX):
        return None
    return VENDOR_OF_ENGINE.get(engine[len(ENGINE_PREFIX) :])


def validate_pooled_databases() -> None:
    """Raise ImproperlyConfigured naming the first bad POOL key of any DATABASES entry."""
    for alias, settings_dict in settings.DATABASES.items():
        vendor = pooled_vendor(settings_dict.get("ENGINE", ""))
        if vendor is not None:
            resolve_pool_options(alias, vendor, settings_dict)
