"""A snapshot directory shared across pid namespaces (a sidecar container, or several
containers on one volume): pids there are not comparable with ours, and two processes
may have the same one. Processes are told apart by their publisher's instance id."""

from __future__ import annotations

import os
import time

from django_dataflow.monitoring.aggregate import collect
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
