"""Fixtures of the hook tests."""

from __future__ import annotations

import pytest

from django_dataflow import hooks as hooks_module
from django_dataflow.signals import (
    pool_checkin,
    pool_checkout,
    pool_connect,
    pool_invalidate,
    pool_timeout,
)


@pytest.fixture(autouse=True)
def _no_leftover_receivers():
    """Hooks registered by a test are removed after it."""
    signals = (pool_connect, pool_checkout, pool_checkin, pool_invalidate, pool_timeout)
    before = {signal: list(signal.receivers) for signal in signals}
    handlers = list(hooks_module._error_handlers)
    yield
    for signal, receivers in before.items():
        signal.receivers[:] = receivers
        signal.sender_receivers_cache.clear()
    hooks_module._error_handlers[:] = handlers
