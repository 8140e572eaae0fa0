"""A new wrapper (a new thread: under ASGI every request's sync code runs in one) takes the
pool another wrapper chose for an equal entry without working out the options and the
pool key again (backends/pools.py, ``latest_pools``); an entry that differs still gets
its own pool."""

from __future__ import annotations

import pytest
from django.db import connections

from django_dataflow.backends import pools

pytestmark = pytest.mark.django_db(transaction=True)


def new_wrapper(settings_dict):
    return connections["default"].__class__(settings_dict, "default")


def select_one(wrapper):
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


def test_a_new_wrapper_with_an_equal_entry_reuses_the_latest_pool(monkeypatch):
    settings_dict = {**connections["default"].settings_dict}
    first = new_wrapper(settings_dict)
    second = None
    try:
        assert select_one(first) == 1
        keyed = []
        original = pools.pool_key
        monkeypatch.setattr(pools, "pool_key", lambda *a, **k: keyed.append(a) or original(*a, **k))
        second = new_wrapper(dict(settings_dict))  # equal, not the same dict
        assert select_one(second) == 1
        assert second.dataflow_pool is first.dataflow_pool
        assert second.dataflow_options == first.dataflow_options
        assert keyed == []  # the pool key was not worked out again
    finally:
        first.close()
        if second is not None:
            second.close()


def test_a_new_wrapper_with_another_entry_gets_its_own_pool():
    settings_dict = {**connections["default"].settings_dict}
    first = new_wrapper(settings_dict)
    other = new_wrapper({**settings_dict, "POOL": {**settings_dict["POOL"], "pool_size": 3}})
    try:
        select_one(first)
        select_one(other)
        assert other.dataflow_pool is not first.dataflow_pool
        assert other.dataflow_pool.pool_size == 3
        assert other.dataflow_options["pool_size"] == 3
    finally:
        first.close()
        other.close()


def test_a_closed_latest_pool_is_not_taken():
    settings_dict = {**connections["default"].settings_dict}
    first = new_wrapper(settings_dict)
    select_one(first)
    pool = first.dataflow_pool
    first.close()
    pool.close()
    second = new_wrapper(dict(settings_dict))
    try:
        assert select_one(second) == 1
        assert second.dataflow_pool is not pool
        assert not second.dataflow_pool.closed
    finally:
        second.close()
