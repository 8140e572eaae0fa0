"""MySQL/MariaDB (mysqlclient) rules for a DATABASES entry. See ``backends/entry.py``."""

from __future__ import annotations

from typing import Any

from django_dataflow.backends.entry import EntryRules


class MySQLEntry(EntryRules):
    def isolation_option(self, level: str) -> Any:
        # Django's MySQL backend takes the SQL spelling: "read committed".
        return level.lower().replace("_", " ")


RULES = MySQLEntry()
