"""AppConfig: registers the pool hooks once Django is ready."""

from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import pool_hooks  # noqa: F401  (the decorators register the hooks)
