"""``DataFlow(using=...)``: the guide's ``db`` object, as a thin view of one alias.

Everything it offers exists as a plain function too; the facade only keeps the guide's
names so that code written for the guide reads the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from django_dataflow import hooks
from django_dataflow.active import ActiveConnection, get_active_connections
from django_dataflow.checkout import pooled_connection


class DataFlow:
    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using

    @property
    def dialect(self) -> str:
        """``"postgresql"``, ``"mysql"`` or ``"sqlite"``."""
        return connections[self.using].vendor

    def on_connect(self, function: Callable | None = None) -> Callable:
        return hooks.on_connect(function, using=self.using)

    def on_checkout(self, function: Callable | None = None) -> Callable:
        return hooks.on_checkout(function, using=self.using)

    def on_checkin(self, function: Callable | None = None) -> Callable:
        return hooks.on_checkin(function, using=self.using)

    def error_handler(self, function: Callable | None = None) -> Callable:
        return hooks.error_handler(function, using=self.using)

    def get_active_connections(self) -> list[ActiveConnection]:
        return get_active_connections(self.using)

    def connection(self) -> Any:
        """``with db.connection() as conn:`` — see ``pooled_connection``."""
        return pooled_connection(self.using)

    def get_pool_stats(self) -> dict[str, Any]:
        from django_dataflow.stats import get_pool_stats

        return get_pool_stats(self.using)

    def __repr__(self) -> str:
        return f"<DataFlow using={self.using!r}>"
