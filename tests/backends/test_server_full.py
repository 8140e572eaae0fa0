"""A server (or a role) out of sessions: requests wait for a connection given back, as
with psycopg_pool and HikariCP, instead of failing one after another with "too many
connections" while the pool has connections open (docs/design.md, "A failed connect
fails nobody while connections are open")."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from tests.backends.helpers import admin_cursor
from tests.backends.test_parked_fallback import limited_role  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def role_with_two_sessions(limited_role, vendor):  # noqa: F811
    """A role allowed 2 sessions (CONNECTION LIMIT / MAX_USER_CONNECTIONS 2): the one of
    test_parked_fallback.py, allowed one more server session."""
    name, _ = limited_role
    with admin_cursor(vendor) as cursor:
        if vendor == "postgresql":
            cursor.execute(f"ALTER ROLE {name} CONNECTION LIMIT 2")
        else:
            cursor.execute(f"ALTER USER '{name}'@'%%' WITH MAX_USER_CONNECTIONS 2")
    return name


def test_a_role_out_of_sessions_serves_every_request(role_with_two_sessions, vendor):
    """Pool 1 + 9, the role allows 2 sessions: 8 threads x 20 requests all served (the
    stock pool, psycopg_pool, serves them all too), none fails with "too many
    connections for role"."""
    settings_dict = {
        **connections["default"].settings_dict,
        "USER": role_with_two_sessions,
        "PASSWORD": "",
        "POOL": {"pool_size": 1, "pool_max_overflow": 9, "pool_timeout": 10},
    }
    sleep = "SELECT pg_sleep(0.02)" if vendor == "postgresql" else "SELECT SLEEP(0.02)"
    served, failed = [], []

    def worker():
        wrapper = connections["default"].__class__(settings_dict, "default")
        try:
            for _ in range(20):
                wrapper.close_if_unusable_or_obsolete()  # request_started
                try:
                    with wrapper.cursor() as cursor:
                        cursor.execute(sleep)
                    served.append(1)
                except Exception as error:
                    failed.append(error)
                finally:
                    wrapper.close_if_unusable_or_obsolete()  # request_finished
        finally:
            wrapper.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failed == [], f"{len(failed)} failed, first: {failed[0]!r}"
    assert len(served) == 160
