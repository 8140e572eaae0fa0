"""A snapshot directory shared across pid namespaces (a sidecar container, or several
containers on one volume): pids there are not comparable with ours, and two processes
may have the same one. Processes are told apart by their publisher's instance id."""

from __future__ import annotations

import os
import time

from django_dataflow.monitoring import conf, store
from django_dataflow.monitoring.aggregate import collect, total_counters
from tests.monitoring.factories import pool_entry, snapshot, write


def in_another_namespace(pid, instance, namespace="pid:[4026999999]", **values):
    data = snapshot({"default": pool_entry(**values)}, pid=pid, instance=instance)
    data.update(namespace=namespace, started=None, published_at=time.time())
    return data


def test_a_process_of_another_namespace_with_our_pid_is_not_taken_for_us(tmp_path):
    # collect() replaces this process's snapshot with a live reading of its pools: it
    # must not drop another container's process that happens to have our pid.
    write(tmp_path, in_another_namespace(os.getpid(), "in-another-container", checked_out=3))
    report = collect(directory=tmp_path)
    assert report.aliases["default"].stats["checked_out"] == 3


def test_two_processes_with_one_pid_in_two_namespaces_are_two_processes(tmp_path):
    # Containers number their processes alike: gunicorn's workers are 7, 8 ... in each.
    write(tmp_path, in_another_namespace(7, "container-a", checked_out=1))
    write(tmp_path, in_another_namespace(7, "container-b", "pid:[4026888888]", checked_out=2))
    report = collect(directory=tmp_path, include_self=False)
    assert len(report.aliases["default"].processes) == 2
    assert report.process_count == 2
    assert report.aliases["default"].stats["checked_out"] == 3


def test_counters_never_go_down_when_a_process_pruned_as_stale_comes_back_and_exits(tmp_path):
    # A process of another namespace is pruned once its snapshot is 30 s old (a paused
    # container) and its counters retired; then it publishes again, and later exits.
    stale = conf.stale_after() + 5
    path = write(tmp_path, in_another_namespace(7, "worker-x", checkouts=10))
    old = store.read_json(path)
    old["published_at"] = time.time() - stale
    store.write_json(path, old)
    assert collect(directory=tmp_path, include_self=False).aliases == {}  # retired

    write(tmp_path, in_another_namespace(7, "worker-x", checkouts=50))  # alive after all
    live = collect(directory=tmp_path, include_self=False)
    assert total_counters(live.aliases["default"])["checkouts"] == 50

    store.retire(tmp_path, [(path, store.read_json(path))])  # it exits: its last snapshot
    write(tmp_path, in_another_namespace(8, "another-worker", checkouts=0))
    after = collect(directory=tmp_path, include_self=False)
    assert total_counters(after.aliases["default"])["checkouts"] == 50
