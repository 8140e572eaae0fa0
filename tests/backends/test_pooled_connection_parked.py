"""``pooled_connection()`` in a thread whose connection is parked (between requests).

The block uses the thread's parked connection: asking "does the thread hold a
connection" must not read ``wrapper.connection`` (which takes the parked connection back)
and then ask for a second one (on a pool of one: PoolTimeout)."""

from __future__ import annotations

import pytest
from django.db import connections

from django_dataflow import pooled_connection
from tests.backends.helpers import AT_REST, at_rest, make_wrapper, request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def small_default():
    """The thread's ``default`` connection, on a pool of one connection."""
    original = connections["default"]
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_timeout=1)
    connections["default"] = wrapper
    try:
        yield wrapper
    finally:
        wrapper.close()
        connections["default"] = original


def test_pooled_connection_after_a_request_uses_one_connection(small_default):
    request(small_default)  # a request ended: the thread's connection is parked
    pool = small_default.dataflow_pool
    assert at_rest(pool) == AT_REST
    # Nothing is held by this thread: the block must be able to use the pool's only
    # connection (the parked one) rather than wait for a second one.
    with pooled_connection() as conn:
        assert conn.execute("SELECT 1") == [(1,)]
    assert at_rest(pool) == AT_REST, pool.get_stats()
