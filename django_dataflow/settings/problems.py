"""``Problem``: one thing wrong with a DATABASES entry, as the system checks report it.

Its own module so that the vendor rules in ``backends/<vendor>/entry.py`` and the
validation in ``validation.py`` share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a DATABASES entry. ``kind`` is stable (the checks map it to
    a check id); ``severity`` is "error" (cannot work), "warning" (works, not as meant) or
    "info" (works as meant, done differently than written)."""

    kind: str
    message: str
    hint: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()
