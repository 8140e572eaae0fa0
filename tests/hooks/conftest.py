"""Fixtures of the hook tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_leftover_receivers(restore_hooks):
    """Hooks registered by a test are removed after it (tests/conftest.py)."""
    return
