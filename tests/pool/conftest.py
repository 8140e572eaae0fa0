"""Fixtures for the pool-engine tests: pools over the connectors of connectors.py."""

from __future__ import annotations

import pytest

from django_dataflow.pool import ConnectionPool
from tests.pool.connectors import GatedResetConnector, SQLiteFileConnector


@pytest.fixture
def connector(tmp_path):
    return SQLiteFileConnector(tmp_path / "pool.sqlite3")


@pytest.fixture
def make_pool(connector):
    pools = []

    def make(**options) -> ConnectionPool:
        options.setdefault("pre_ping", False)
        pool = ConnectionPool(connector, name="test", **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture
def gated_connector(tmp_path):
    return GatedResetConnector(tmp_path / "pool.sqlite3")
