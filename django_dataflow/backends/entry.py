"""What a DATABASES entry of one vendor needs beyond the POOL schema.

The settings package (``DataFlowConfig``, the system checks) asks these rules for the
driver OPTIONS a config writes and for conflicts between POOL and OPTIONS, so that driver
details (psycopg's prepared statements, mysqlclient's isolation-level spelling, SQLite's
PRAGMAs) live with the vendor's backend. These modules import no driver: a settings file
may load them.
"""

from __future__ import annotations

from typing import Any

from django_dataflow.settings.problems import Problem


class EntryRules:
    """The defaults: a vendor that adds no OPTIONS and has no vendor conflicts."""

    def driver_options(
        self, name: Any, given: dict[str, Any], isolation_level: str | None, cache_size: int
    ) -> dict[str, Any]:
        """The OPTIONS a DataFlowConfig adds for this vendor (``given``: the URL's)."""
        added: dict[str, Any] = {}
        if isolation_level is not None:
            added["isolation_level"] = self.isolation_option(isolation_level)
        return added

    def isolation_option(self, level: str) -> Any:
        """``level`` ("READ_COMMITTED") as Django's backend for the vendor expects it."""
        return level

    def advice(self, option: str) -> str:
        """A sentence added to the error for a guide option this vendor cannot use."""
        return ""

    def conflicts(
        self,
        entry: str,
        settings_dict: dict[str, Any],
        driver_options: dict[str, Any],
        options: dict[str, Any],
    ) -> list[Problem]:
        """Problems between the entry's POOL and its driver OPTIONS (``entry`` names it)."""
        return []
