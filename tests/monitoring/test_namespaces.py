"""A snapshot directory shared across pid namespaces (a sidecar container, or several
containers on one volume): pids there are not comparable with ours, and two processes
may have the same one. Processes are told apart by their publisher's instance id."""

from __future__ import annotations

import os
import time

from django_dataflow import conf
from django_dataflow.monitoring import store
from django_dataflow.monitoring.aggregate import collect, total_counters
from tests.monitoring.factories import pool_entry, snapshot, write


def in_another_namespace(pid, instance, namespace="pid:[4026999999]", **values):
    data = snapshot({"default": pool_entry(**values)}, pid=pid, instance=instance)
    data.update(namespace=namespace, started=None, published_at=time.time())
    return data


def write_stale(directory, pid, instance, **values):
    """A snapshot of another namespace last written just over ``stale_after`` ago."""
    path = write(directory, in_another_namespace(pid, instance, **values))
    old = store.read_json(path)
    old["published_at"] = time.time() - conf.stale_after() - 5
    store.write_json(path, old)
    return path


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
    path = write_stale(tmp_path, 7, "worker-x", checkouts=10)
    assert collect(directory=tmp_path, include_self=False).aliases == {}  # retired

    write(tmp_path, in_another_namespace(7, "worker-x", checkouts=50))  # alive after all
    live = collect(directory=tmp_path, include_self=False)
    assert total_counters(live.aliases["default"])["checkouts"] == 50

    store.retire(tmp_path, [(path, store.read_json(path))])  # it exits: its last snapshot
    write(tmp_path, in_another_namespace(8, "another-worker", checkouts=0))
    after = collect(directory=tmp_path, include_self=False)
    assert total_counters(after.aliases["default"])["checkouts"] == 50


def test_a_process_pruned_as_stale_is_not_folded_into_the_base_and_counted_twice(tmp_path):
    # After RECENT_RETIRED later exits, the stale-pruned process's counters must not be
    # folded into the anonymous base: when it comes back alive they would be counted
    # twice (once in the base, once live), and again when it exits.
    path = write_stale(tmp_path, 7, "paused-container", checkouts=10)
    collect(directory=tmp_path, include_self=False)  # pruned as stale: its 10 retired

    exited = [
        (tmp_path / f"gone-{n}.json", in_another_namespace(100 + n, f"exited-{n}", checkouts=1))
        for n in range(store.RECENT_RETIRED + 5)
    ]
    for _path, data in exited:  # confirmed exits (each retired by its own process)
        store.retire(tmp_path, [(_path, data)])

    write(tmp_path, in_another_namespace(7, "paused-container", checkouts=30))  # alive again
    live = collect(directory=tmp_path, include_self=False)
    assert total_counters(live.aliases["default"])["checkouts"] == 30 + len(exited)

    store.retire(tmp_path, [(path, store.read_json(path))])  # it exits
    counters = store.exited_counters(tmp_path, set())
    assert counters["default"]["checkouts"] == 30 + len(exited)


def test_a_process_silent_for_over_a_day_is_folded_like_any_other(tmp_path):
    # The exception above is bounded: retired.json does not keep every container that
    # ever went silent.
    long_ago = time.time() - store.UNCONFIRMED_KEPT_S - 60
    silent = in_another_namespace(7, "gone-for-good", checkouts=10)
    silent["published_at"] = long_ago
    store.retire(tmp_path, [(tmp_path / "silent.json", silent)], confirmed=False)
    for n in range(store.RECENT_RETIRED):
        data = in_another_namespace(100 + n, f"exited-{n}", checkouts=1)
        store.retire(tmp_path, [(tmp_path / f"gone-{n}.json", data)])
    retired = store.read_retired(tmp_path)
    assert "gone-for-good" not in retired["recent"]
    assert retired["unconfirmed"] == {}
    assert retired["base"]["default"]["checkouts"] == 10
