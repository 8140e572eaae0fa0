"""Django's MySQL checks, kept from connecting while the entry's POOL is wrong.

Django's model and field checks on MySQL (``manage.py check --database``, ``migrate``)
read the server's version and ``sql_mode``, which opens a connection; with a wrong POOL
that connection raises, and the command would stop with a traceback instead of listing
the problems. While the entry has POOL errors, the MySQL-only checks are left out and
the model checks see ``UNKNOWN_SERVER`` (Django's oldest supported MySQL, strict): the
dataflow checks report every problem with its id, and the real checks run once the
POOL is fixed. PostgreSQL's and SQLite's checks do not connect.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.mysql.validation import DatabaseValidation as DjangoValidation

# What ``mysql_server_data`` says, without connecting, while the POOL is wrong.
UNKNOWN_SERVER = {
    "version": "8.0.11",
    "sql_mode": "STRICT_TRANS_TABLES",
    "default_storage_engine": "InnoDB",
    "sql_auto_is_null": False,
    "lower_case_table_names": False,
    "has_zoneinfo_database": True,
}


def pool_is_wrong(connection: Any) -> bool:
    """Did the entry's POOL fail validation when the wrapper was built?"""
    # None: resolve_pool_options raised in __init__ (backends/base.py).
    return getattr(connection, "dataflow_options", {}) is None


class DatabaseValidation(DjangoValidation):
    def _pool_is_wrong(self) -> bool:
        return pool_is_wrong(self.connection)

    def check(self, **kwargs: Any) -> list[Any]:
        if self._pool_is_wrong():
            return []
        return super().check(**kwargs)

    def check_field(self, field: Any, **kwargs: Any) -> list[Any]:
        if self._pool_is_wrong():
            return []
        return super().check_field(field, **kwargs)
