"""Dead connections: server-side kills, idle timeouts, disconnects, recycling."""

from __future__ import annotations

import time

import pytest
from django.db import OperationalError

from tests.backends.helpers import backend_pid, kill_session, make_wrapper, session_alive

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until_gone(pid, vendor):
    deadline = time.monotonic() + 10
    while session_alive(pid, vendor):
        assert time.monotonic() < deadline, f"session {pid} survived being killed"
        time.sleep(0.05)


def stats_of(wrapper):
    return wrapper.dataflow_pool.get_stats()


def test_pre_ping_replaces_a_killed_idle_connection_without_an_error(server_vendor):
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_pre_ping_bypass=0.0)
    first = backend_pid(wrapper)
    wrapper.close()
    kill_session(first, server_vendor)
    wait_until_gone(first, server_vendor)
    second = backend_pid(wrapper)  # no error reaches the borrower
    assert second != first
    assert stats_of(wrapper)["pre_ping_failures"] == 1
    wrapper.close()


@pytest.mark.slow
def test_pre_ping_survives_mariadb_wait_timeout(vendor):
    if vendor != "mysql":
        pytest.skip("wait_timeout is a MySQL/MariaDB server setting")
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0)  # default bypass (0.5 s)
    first = backend_pid(wrapper)
    with wrapper.cursor() as cursor:
        cursor.execute("SET SESSION wait_timeout = 1")
    wrapper.close()
    time.sleep(2.5)  # the server drops the idle session
    assert not session_alive(first, vendor)
    second = backend_pid(wrapper)
    assert second != first
    assert stats_of(wrapper)["pre_ping_failures"] == 1
    wrapper.close()


def test_a_connection_that_died_in_use_is_discarded_and_its_siblings_are_checked(
    server_vendor,
):
    # Pre-ping is off: only the pool-wide invalidation can catch the dead idle sibling.
    options = {"pool_size": 2, "pool_max_overflow": 0, "pool_pre_ping": False}
    in_use, idle = make_wrapper(**options), make_wrapper(**options)
    in_use_pid, idle_pid = backend_pid(in_use), backend_pid(idle)
    idle.close()
    kill_session(in_use_pid, server_vendor)
    kill_session(idle_pid, server_vendor)
    wait_until_gone(in_use_pid, server_vendor)
    wait_until_gone(idle_pid, server_vendor)
    with pytest.raises(OperationalError), in_use.cursor() as cursor:
        cursor.execute("SELECT 1")  # the in-use connection's error reaches its user
    in_use.close()
    stats = stats_of(in_use)
    assert stats["invalidated_by_reason"].get("disconnect") == 1
    assert stats["total"] == 1
    fresh = backend_pid(idle)  # the dead idle sibling is checked and replaced
    assert fresh not in (in_use_pid, idle_pid)
    assert stats_of(idle)["pre_ping_failures"] == 1
    idle.close()


def test_recycle_replaces_a_connection_past_its_lifetime():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_recycle=1)
    first = backend_pid(wrapper)
    wrapper.close()
    time.sleep(1.1)
    second = backend_pid(wrapper)
    wrapper.close()
    assert second != first
    assert stats_of(wrapper)["recycled"] == 1


def test_recycle_none_keeps_the_connection():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_recycle=None)
    first = backend_pid(wrapper)
    wrapper.close()
    assert backend_pid(wrapper) == first
    wrapper.close()
