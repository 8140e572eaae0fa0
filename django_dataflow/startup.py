"""What django_dataflow hooks into Django when it starts, and which entries are ours.

* ``pooled_vendor`` / ``pooled_entries``: which DATABASES entries use our ENGINEs (the
  system checks and DataFlowConfig share this mapping).
* ``validate_pooled_databases``: raise on the first configuration error. AppConfig.ready
  does *not* call it: the system checks report every problem at once (see
  docs/design.md, "Configuration: errors vs system checks"); a project that wants its
  WSGI process to refuse to boot calls it from wsgi.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django_dataflow.options import resolve_pool_options

ENGINE_PREFIX = "django_dataflow.backends."
VENDOR_OF_ENGINE = {"postgresql": "postgresql", "mysql": "mysql", "sqlite3": "sqlite"}
ENGINE_OF_VENDOR = {vendor: ENGINE_PREFIX + module for module, vendor in VENDOR_OF_ENGINE.items()}


def pooled_vendor(engine: str) -> str | None:
    """The vendor of one of our ENGINE paths, or None for any other ENGINE."""
    if not isinstance(engine, str) or not engine.startswith(ENGINE_PREFIX):
        return None
    return VENDOR_OF_ENGINE.get(engine[len(ENGINE_PREFIX) :])


def pooled_entries(databases: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(alias, vendor, entry) for every entry of ``databases`` that uses our ENGINEs."""
    for alias, settings_dict in databases.items():
        if not isinstance(settings_dict, dict):
            continue
        vendor = pooled_vendor(settings_dict.get("ENGINE", ""))
        if vendor is not None:
            yield alias, vendor, settings_dict


def validate_pooled_databases() -> None:
    """Raise ImproperlyConfigured naming the first bad POOL key of any DATABASES entry."""
    from django.conf import settings

    for alias, vendor, settings_dict in pooled_entries(settings.DATABASES):
        resolve_pool_options(alias, vendor, settings_dict)
