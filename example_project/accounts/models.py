"""The site's user: the guide's ``User`` with its ``active`` flag (Django's ``is_active``).

A custom user model from the first migration, as Django recommends for a new project;
``manage.py pool_loadtest`` lists the first 100 active ones by default.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    team = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["username"]
        indexes = [models.Index(fields=["is_active", "username"], name="active_users")]

    def __str__(self) -> str:
        return self.username
