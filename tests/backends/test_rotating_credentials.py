"""Rotating credentials (the RDS IAM / Azure AD / Vault pattern, as django-iam-dbauth
does it): a backend subclass whose ``get_connection_params()`` returns a fresh token.
One pool, within its limit, and every new physical connection uses the newest token."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connections

from django_dataflow.pool import registry

pytestmark = pytest.mark.django_db(transaction=True)


def token_wrapper_class(base: type, tokens: itertools.count) -> type:
    class TokenDatabaseWrapper(base):
        def get_connection_params(self):
            params = super().get_connection_params()
            params["password"] = f"token-{next(tokens)}"  # valid for minutes
            return params

    return TokenDatabaseWrapper


def test_a_fresh_token_per_connect_keeps_one_pool_within_its_limit(vendor):
    if vendor != "postgresql":
        pytest.skip("the test server accepts any password on PostgreSQL only (trust)")
    tokens = itertools.count()
    wrapper_class = token_wrapper_class(connections["default"].__class__, tokens)
    settings_dict = {
        **connections["default"].settings_dict,
        "POOL": {"pool_size": 2, "pool_max_overflow": 0, "pool_timeout": 10},
    }
    alias = "rotating"
    before = set(registry.all_pools(alias))
    sessions: set[int] = set()
    passwords: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(10)

    def worker():
        wrapper = wrapper_class(dict(settings_dict), alias)
        start.wait()
        for _ in range(3):
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            with lock:
                sessions.add(pid)
                passwords.append(wrapper.connection.info.password)
            wrapper.close()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    pools = set(registry.all_pools(alias)) - before
    assert len(pools) == 1, pools
    (pool,) = pools
    assert len(sessions) <= 2, sessions
    assert pool.get_stats()["connections_created"] <= 2

    # The token rotates; the connections open now are replaced (recycled, killed...):
    # each new one connects with the newest token, not the pool's first.
    for record in list(pool._idle):
        record.invalidate("test")
    issued_before = next(tokens)
    wrapper = wrapper_class(dict(settings_dict), alias)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
    password = wrapper.connection.info.password
    assert int(password.removeprefix("token-")) > issued_before, password
    wrapper.close()
    pool.close()
    assert set(passwords) <= {f"token-{n}" for n in range(issued_before)}
