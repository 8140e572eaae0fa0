"""``manage.py seed_users``: fill the site with users for the list view and the load test.

Idempotent: it tops the demo users (``demo-00001`` …) up to ``--count`` and never
duplicates them, so running the demo twice gives the same data. Every tenth user is
inactive, so the "active users" query has something to filter out.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, transaction

PREFIX = "demo-"
TEAMS = ("platform", "payments", "search", "mobile", "data")
BATCH = 500


class Command(BaseCommand):
    help = "Create demo users (demo-00001 …) until there are --count of them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1000, help="Demo users wanted.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Alias to write to.")

    def handle(self, *args: Any, count: int, database: str, **options: Any) -> None:
        if count < 0:
            raise CommandError("--count must be 0 or more.")
        User = get_user_model()
        users = User._default_manager.db_manager(database)
        existing = set(users.filter(username__startswith=PREFIX).values_list("username", flat=True))
        # One unusable password for all: demo users cannot log in, and hashing a real
        # password per user would take most of the demo's time.
        password = make_password(None)
        missing = [
            User(
                username=f"{PREFIX}{number:05d}",
                email=f"{PREFIX}{number:05d}@example.com",
                password=password,
                team=TEAMS[number % len(TEAMS)],
                is_active=number % 10 != 0,
            )
            for number in range(1, count + 1)
            if f"{PREFIX}{number:05d}" not in existing
        ]
        with transaction.atomic(using=database):
            users.bulk_create(missing, batch_size=BATCH)
        active = users.filter(username__startswith=PREFIX, is_active=True).count()
        self.stdout.write(
            f"Created {len(missing)} demo users; {len(existing) + len(missing)} in all, "
            f"{active} of them active."
        )
