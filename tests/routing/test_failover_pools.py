"""Replica failover and the replica pools: an unresponsive replica fails over within
connect_timeout, and a busy replica pool is not taken for a replica that is down.

Real servers: the primary on 5432 and its streaming standby on 5433 (bin/replica-up).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.core.signals import request_finished, request_started
from django.db import connections
from django.test import override_settings

from django_dataflow.api import pooled_session
from django_dataflow.routing.context import routing_scope
from django_dataflow.routing.health import health
from tests.routing.helpers import where_read
from tests.routing.routingapp.models import Article

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
ON_PRIMARY = ("default", False)
ON_REPLICA = ("replica1", True)


@pytest.fixture
def unresponsive_replica():
    """Point the ``replica_down`` alias at a port that accepts TCP connections and never
    answers (what a network partition or a hung host looks like to libpq): each connect
    ends only with ``OPTIONS["connect_timeout"]`` (2 s in tests/dbsettings/routing.py)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)  # the kernel completes handshakes; nobody ever reads
    entry = connections.settings["replica_down"]
    old_port = entry["PORT"]
    entry["PORT"] = str(listener.getsockname()[1])
    try:
        yield entry["OPTIONS"]["connect_timeout"]
    finally:
        entry["PORT"] = old_port
        listener.close()


def test_concurrent_reads_to_an_unresponsive_replica_fail_over_within_connect_timeout(
    unresponsive_replica,
):
    """docs/routing.md: "A host that does not answer at all (a network partition) is
    noticed only after connect_timeout". Eight requests read at once. A connect that
    fails with nothing open fails every request waiting in the replica's pool, and each
    reads the primary: none stays queued behind one connect attempt after another, the
    last ones for the whole pool_timeout (5 s here, 30 s by default)."""
    connect_timeout = float(unresponsive_replica)
    threads_count = 8
    barrier = threading.Barrier(threads_count, timeout=30)
    took: dict[int, float] = {}
    landed: dict[int, object] = {}

    def request(n):
        barrier.wait()
        started = time.monotonic()
        request_started.send(sender=None)
        try:
            landed[n] = where_read(Article)
        except Exception as error:  # counted, never expected
            landed[n] = repr(error)
        finally:
            request_finished.send(sender=None)
            connections.close_all()
            took[n] = time.monotonic() - started

    with override_settings(DATAFLOW_ROUTING={"default": {"replicas": ["replica_down"]}}):
        threads = [threading.Thread(target=request, args=(n,)) for n in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert set(landed.values()) == {ON_PRIMARY}
    slowest = max(took.values())
    assert slowest < connect_timeout + 1.0, (
        f"reads waited {sorted(round(t, 1) for t in took.values())} s to fail over; "
        f"connect_timeout is {connect_timeout} s"
    )


@pytest.fixture
def one_connection_replica():
    """replica1's pool holds one connection; a borrower waits 0.5 s for it at most."""
    pool = connections.settings["replica1"]["POOL"]
    saved = dict(pool)
    pool.update(pool_size=1, pool_max_overflow=0, pool_timeout=0.5)
    try:
        yield
    finally:
        pool.clear()
        pool.update(saved)


def test_a_busy_replica_pool_does_not_mark_a_reachable_replica_down(one_connection_replica):
    """A replica that answers, whose pool is merely in use by another request, is not
    "unreachable": docs/routing.md keeps `cooldown` for "an unreachable replica" and
    lists replicas "that are up and not lagging" as read targets. The checkout's
    PoolTimeout sends that read alone elsewhere: the replica is not marked down, the log
    does not call it unreachable, and the other reads of the process are not sent to the
    primary for the whole cooldown (30 s)."""
    with override_settings(DATAFLOW_ROUTING={"default": {"replicas": ["replica1"]}}):
        holding, release = threading.Event(), threading.Event()

        def long_request():
            request_started.send(sender=None)
            try:
                # Holds replica1's only connection (with either pool_scope).
                with pooled_session("replica1"):
                    assert where_read(Article) == ON_REPLICA
                    holding.set()
                    release.wait(30)
            finally:
                request_finished.send(sender=None)
                connections.close_all()

        holder = threading.Thread(target=long_request)
        holder.start()
        try:
            assert holding.wait(30)
            with routing_scope():
                assert where_read(Article) == ON_PRIMARY  # no connection free: the primary
        finally:
            release.set()
            holder.join(timeout=30)
        state = health.snapshot()["replica1"]
        with routing_scope():
            after = where_read(Article)  # the pool is free again, the replica answers
    assert state["down"] is False, f"a reachable replica was marked down: {state}"
    assert after == ON_REPLICA
