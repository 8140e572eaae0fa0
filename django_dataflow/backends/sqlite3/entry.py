"""SQLite rules for a DATABASES entry: WAL and immediate transactions for a file
database shared by pooled connections. See ``backends/entry.py``."""

from __future__ import annotations

from typing import Any

from django_dataflow.backends.entry import EntryRules

# On SQLite the pool lets several threads use one file at once: WAL lets readers run
# beside the writer, and BEGIN IMMEDIATE takes the write lock up front, so two
# transactions never deadlock upgrading read locks ("database is locked").
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
    "transaction_mode": "IMMEDIATE",
}


class SQLiteEntry(EntryRules):
    def driver_options(
        self, name: Any, given: dict[str, Any], isolation_level: str | None, cache_size: int
    ) -> dict[str, Any]:
        if name == ":memory:" or str(name).startswith("file:"):
            return {}
        return {key: value for key, value in SQLITE_OPTIONS.items() if key not in given}

    def advice(self, option: str) -> str:
        if option != "isolation_level":
            return ""
        return (
            " SQLite transactions are always serializable; to choose how a transaction "
            "takes its locks, pass OPTIONS={'transaction_mode': ...} to as_database()."
        )


RULES = SQLiteEntry()
