"""The PoolTimeout a request gets keeps the pool's cause: the last connect error."""

from __future__ import annotations

import pytest

from django_dataflow import PoolTimeout
from tests.backends.helpers import make_wrapper

pytestmark = pytest.mark.django_db(transaction=True)


class ServerFull(Exception):
    pass


def test_a_timeout_after_failed_connects_has_the_connect_error_as_its_cause(monkeypatch):
    holder = make_wrapper(pool_size=1, pool_max_overflow=1, pool_timeout=0.5)
    holder.ensure_connection()  # one connection open: the pool waits, not fails fast
    connector = holder.dataflow_pool.connector

    def refuse():
        raise ServerFull("too many connections")

    monkeypatch.setattr(connector, "connect", refuse)
    other = make_wrapper(pool_size=1, pool_max_overflow=1, pool_timeout=0.5)
    with pytest.raises(PoolTimeout) as raised:
        other.ensure_connection()
    assert isinstance(raised.value.__cause__, ServerFull)
    monkeypatch.undo()
    holder.close()
    holder.dataflow_pool.close()
