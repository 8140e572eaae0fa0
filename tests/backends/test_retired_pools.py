"""Pools left behind by a settings change: a pool whose last wrapper left it for another
closes its idle connections at once and is dropped, and the pools of one alias are
bounded (per-tenant switching)."""

from __future__ import annotations

import pytest
from django.db import connections

from django_dataflow.pool import registry
from tests.backends.helpers import (
    current_database,
    extra_database,
    make_wrapper,
    request,
    sessions_on,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_old_database_can_be_dropped_after_a_name_change_and_back(vendor, tmp_path):
    """An in-place NAME change and back: the pool of the database switched away from
    kept an idle session for ever, and PostgreSQL refused to drop the database ("being
    accessed by other users")."""
    wrapper = make_wrapper(pool_size=2, pool_max_overflow=0)
    home = wrapper.settings_dict["NAME"]
    database = extra_database(vendor, "dataflow_left_behind", tmp_path)
    with database as other:
        request(wrapper)
        home_pool = wrapper.dataflow_pool
        wrapper.close()  # (a parked connection is test_parked_checks.py's)
        wrapper.settings_dict["NAME"] = other
        request(wrapper)
        other_pool = wrapper.dataflow_pool
        assert other_pool is not home_pool
        assert home_pool.closed and home_pool.get_stats()["total"] == 0
        wrapper.close()
        wrapper.settings_dict["NAME"] = home
        request(wrapper)
        assert other_pool.closed and other_pool.get_stats()["total"] == 0
        assert other_pool not in registry.all_pools("default")
        if vendor != "sqlite":
            assert sessions_on(vendor, other) == 0
        database.drop()  # PostgreSQL: fails while a session is on it
        wrapper.close()
        wrapper.dataflow_pool.close()


def test_a_pool_another_wrapper_still_uses_stays_open(vendor, tmp_path):
    one = make_wrapper(pool_size=2, pool_max_overflow=0, pool_timeout=4.5)
    two = one.__class__(dict(one.settings_dict, POOL=dict(one.settings_dict["POOL"])), "default")
    home = one.settings_dict["NAME"]
    with extra_database(vendor, "dataflow_still_used", tmp_path) as other:
        request(one)
        request(two)
        shared = one.dataflow_pool
        assert two.dataflow_pool is shared
        one.close_if_unusable_or_obsolete()
        one.settings_dict["NAME"] = other
        request(one)
        assert not shared.closed  # two still uses it
        request(two)
        assert two.dataflow_pool is shared
        for wrapper in (one, two):
            wrapper.close()
        one.dataflow_pool.close()
        shared.close()
        one.settings_dict["NAME"] = home


def test_the_pools_of_one_alias_are_bounded(monkeypatch):
    """Per-tenant settings: a pool per tenant, each with a wrapper that used it last.
    Past the bound, making a pool retires the least recently chosen ones."""
    monkeypatch.setattr(registry, "MAX_POOLS_PER_ALIAS", 3, raising=False)
    alias = "tenants"
    base = connections["default"]
    wrappers = []
    for tenant in range(5):
        settings_dict = {
            **base.settings_dict,
            "POOL": {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 1 + tenant / 10},
        }
        wrapper = base.__class__(settings_dict, alias)
        request(wrapper)
        wrappers.append(wrapper)
        assert len(registry.all_pools(alias)) <= 3
    assert [wrapper.dataflow_pool.closed for wrapper in wrappers] == [True, True] + [False] * 3
    # The first tenant's next request gets a pool again (and another is retired).
    assert current_database(wrappers[0])
    wrappers[0].close_if_unusable_or_obsolete()
    assert len(registry.all_pools(alias)) == 3
    for wrapper in wrappers:
        wrapper.close()
    registry.close_pools(lambda key, pool: key[0] == alias)
