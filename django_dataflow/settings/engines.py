"""The one table of the vendors we pool, and everything named after them.

Each row ties a vendor (Django's ``connection.vendor``) to our ENGINE path, Django's own
ENGINE for it, its label in messages, the URL scheme django-environ expects and the
server's default port. Every other mapping in the package is derived from this table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from django_dataflow.backends.entry import EntryRules
from django_dataflow.backends.mysql.entry import RULES as MYSQL_RULES
from django_dataflow.backends.postgresql.entry import RULES as POSTGRESQL_RULES
from django_dataflow.backends.sqlite3.entry import RULES as SQLITE_RULES

ENGINE_PREFIX = "django_dataflow.backends."


class Engine(NamedTuple):
    vendor: str  # Django's connection.vendor
    module: str  # the package under django_dataflow.backends (and django.db.backends)
    label: str  # how messages name it
    environ_scheme: str  # the URL scheme django-environ maps to the stock backend
    default_port: str | None  # the server's default port (None: a file, no server)

    rules: EntryRules  # the vendor's rules for a DATABASES entry (backends/<vendor>/entry.py)

    @property
    def has_server(self) -> bool:
        """Is the database reached through a server (False: a file)?"""
        return self.default_port is not None

    @property
    def path(self) -> str:
        """Our ENGINE path."""
        return ENGINE_PREFIX + self.module

    @property
    def stock_path(self) -> str:
        """Django's own ENGINE path for the vendor."""
        return "django.db.backends." + self.module


ENGINES = (
    Engine("postgresql", "postgresql", "PostgreSQL", "postgres", "5432", POSTGRESQL_RULES),
    Engine("mysql", "mysql", "MySQL/MariaDB", "mysql", "3306", MYSQL_RULES),
    Engine("sqlite", "sqlite3", "SQLite", "sqlite", None, SQLITE_RULES),
)
BY_VENDOR = {engine.vendor: engine for engine in ENGINES}

VENDORS = tuple(BY_VENDOR)
VENDOR_LABELS = {engine.vendor: engine.label for engine in ENGINES}
ENGINE_OF_VENDOR = {engine.vendor: engine.path for engine in ENGINES}
VENDOR_OF_ENGINE = {engine.path: engine.vendor for engine in ENGINES}
STOCK_ENGINE_OF_VENDOR = {engine.vendor: engine.stock_path for engine in ENGINES}
VENDOR_OF_STOCK_ENGINE = {engine.stock_path: engine.vendor for engine in ENGINES}
DEFAULT_PORTS = {engine.vendor: engine.default_port for engine in ENGINES if engine.default_port}


def pooled_vendor(engine: Any) -> str | None:
    """The vendor of one of our ENGINE paths, or None for any other ENGINE."""
    return VENDOR_OF_ENGINE.get(engine) if isinstance(engine, str) else None


def pooled_entries(databases: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(alias, vendor, entry) for every entry of ``databases`` that uses our ENGINEs."""
    for alias, settings_dict in databases.items():
        if not isinstance(settings_dict, dict):
            continue
        vendor = pooled_vendor(settings_dict.get("ENGINE", ""))
        if vendor is not None:
            yield alias, vendor, settings_dict


def entry_rules(vendor: str) -> EntryRules:
    """The rules of ``vendor`` for a DATABASES entry."""
    return BY_VENDOR[vendor].rules
