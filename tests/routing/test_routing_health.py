"""Replica health: reads never fail because a replica is down, killed or lagging.

The last test stops the real standby mid-run (bin/replica-up stop) and starts it again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.core.signals import request_finished, request_started
from django.db import connections
from django.test import override_settings

from django_dataflow.routing import health as routing_health
from django_dataflow.routing.context import routing_scope
from django_dataflow.routing.health import health
from django_dataflow.routing.router import DataFlowRouter
from tests.routing.helpers import (
    can_control_replica,
    replica_ctl,
    replica_sql,
    run_async,
    wait_for_replica,
    where_read,
)
from tests.routing.routingapp.models import Article

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
ON_REPLICA = ("replica1", True)
ON_PRIMARY = ("default", False)


def routing(replicas, **options):
    return override_settings(DATAFLOW_ROUTING={"default": {"replicas": replicas, **options}})


def test_an_unreachable_replica_is_tried_once_per_cooldown_and_reads_go_elsewhere():
    with routing({"replica_down": 100, "replica1": 1}, cooldown=30):
        reads = [where_read(Article) for _ in range(200)]
        assert set(reads) == {ON_REPLICA}
        state = health.snapshot()["replica_down"]
    assert state["failures"] == 1  # one connection attempt for 200 reads
    assert state["down"] is True
    assert "refused" in state["last_error"] or "connect" in state["last_error"]


def test_after_its_cooldown_a_down_replica_is_tried_again():
    # Only the down replica: every read falls back to the primary, and the number of
    # connection attempts does not depend on a weighted draw.
    with routing(["replica_down"], cooldown=0.2):
        assert where_read(Article) == ON_PRIMARY
        assert where_read(Article) == ON_PRIMARY
        assert health.snapshot()["replica_down"]["failures"] == 1
        time.sleep(0.3)
        assert where_read(Article) == ON_PRIMARY
        assert health.snapshot()["replica_down"]["failures"] == 2


def test_with_every_replica_down_reads_go_to_the_primary():
    with routing(["replica_down"]):
        assert [where_read(Article) for _ in range(20)] == [ON_PRIMARY] * 20


def test_a_killed_replica_connection_is_replaced_without_a_failed_read():
    with routing(["replica1"]), routing_scope():
        assert where_read(Article) == ON_REPLICA
        pid = connections["replica1"].connection.info.backend_pid
        replica_sql("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 5
        while replica_sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])[0]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert where_read(Article) == ON_REPLICA  # the router's probe saw the socket close
        assert connections["replica1"].connection.info.backend_pid != pid
        assert health.snapshot()["replica1"]["failures"] == 0


def test_a_lagging_replica_is_skipped_until_it_catches_up():
    with routing(["replica1"], max_lag=0.3, lag_check_interval=0.05):
        assert where_read(Article) == ON_REPLICA
        replica_sql("SELECT pg_wal_replay_pause()")
        try:
            with routing_scope():
                Article.objects.create(title="not yet replayed")
            deadline = time.monotonic() + 10
            while where_read(Article) != ON_PRIMARY:  # no read fails meanwhile
                assert time.monotonic() < deadline, "the lag was never noticed"
                time.sleep(0.05)
            assert health.snapshot()["replica1"]["lagging"] is True
        finally:
            replica_sql("SELECT pg_wal_replay_resume()")
        wait_for_replica()
        time.sleep(0.1)
        assert where_read(Article) == ON_REPLICA
        assert health.snapshot()["replica1"]["lag"] < 0.3


def test_lag_is_measured_at_most_once_per_interval_per_replica(monkeypatch):
    calls = Counter()
    measure = routing_health.measure_lag

    def counting(wrapper):
        calls[wrapper.alias] += 1
        return measure(wrapper)

    monkeypatch.setattr(routing_health, "measure_lag", counting)
    with routing({"replica1": 1, "replica2": 1}, max_lag=60, lag_check_interval=0.5):
        started = time.monotonic()
        reads = 0
        while time.monotonic() - started < 1.2:
            where_read(Article)
            reads += 1
    assert reads > 100
    assert set(calls) == {"replica1", "replica2"}
    assert max(calls.values()) <= 3  # at 0, 0.5 and 1.0 s


def test_the_router_does_not_connect_from_async_code():
    async def main():
        return DataFlowRouter().db_for_read(Article)

    assert run_async(main) in {"replica1", "replica2"}


@pytest.mark.slow
def test_stopping_the_replica_mid_run_fails_no_read():
    """Eight threads read; between two phases the standby is stopped, then started.

    Half the threads hold their replica connections open across reads (one long
    request), half return them to the pool after each read (one request per read)."""
    if not can_control_replica():
        pytest.skip("stopping the replica needs root or the postgres user")
    reads_per_phase, threads_count = 100, 8
    barrier = threading.Barrier(threads_count + 1, timeout=60)
    landed = [Counter() for _ in range(3)]
    failures = []
    lock = threading.Lock()

    def worker(per_request):
        def one_read(phase):
            try:
                result = where_read(Article)
            except Exception as error:  # counted, never expected
                with lock:
                    failures.append(repr(error))
                return
            with lock:
                landed[phase][result] += 1

        try:
            with routing_scope():
                for phase in range(3):
                    barrier.wait()
                    for _ in range(reads_per_phase):
                        if per_request:
                            request_started.send(sender=None)
                            one_read(phase)
                            request_finished.send(sender=None)
                        else:
                            one_read(phase)
                    barrier.wait()
        finally:
            connections.close_all()

    with routing({"replica1": 3, "replica2": 1}, cooldown=1.0):
        threads = [
            threading.Thread(target=worker, args=(n % 2 == 0,)) for n in range(threads_count)
        ]
        for thread in threads:
            thread.start()
        try:
            barrier.wait()  # phase 0: the standby is up
            barrier.wait()
            replica_ctl("stop")
            barrier.wait()  # phase 1: it is down
            barrier.wait()
            replica_ctl("up")
            time.sleep(1.1)  # the cool-down ends
            barrier.wait()  # phase 2: it is back
            barrier.wait()
        finally:
            for thread in threads:
                thread.join(timeout=60)
            replica_ctl("up")
    total = reads_per_phase * threads_count
    print(
        f"\nfailover: {3 * total} reads, {len(failures)} failed; "
        f"up {dict(landed[0])}, stopped {dict(landed[1])}, restarted {dict(landed[2])}"
    )
    assert failures == []
    assert sum(landed[0].values()) == sum(landed[1].values()) == sum(landed[2].values()) == total
    assert {rec for (_, rec) in landed[0]} == {True}
    assert set(landed[1]) == {ON_PRIMARY}
    assert {rec for (_, rec) in landed[2]} == {True}
