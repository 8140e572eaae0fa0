"""``manage.py pool_stats`` run in its own process reports the pools of two real worker
processes, per alias and per process."""

from __future__ import annotations

import json
import stat
import time

import pytest

from django_dataflow.monitoring import store
from tests.monitoring.conftest import as_json

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_command_adds_up_the_pools_of_two_worker_processes(spawn_worker, pool_stats):
    first = spawn_worker(requests=5, hold=2)
    second = spawn_worker(requests=3, hold=1)

    report = as_json(pool_stats("--format", "json"))

    default = report["aliases"]["default"]
    assert default["processes"] == 2
    assert {p["pid"] for p in default["per_process"]} == {first.pid, second.pid}
    per_pid = {p["pid"]: p["stats"] for p in default["per_process"]}
    assert per_pid[first.pid]["checked_out"] == 2
    assert per_pid[second.pid]["checked_out"] == 1
    stats = default["stats"]
    assert stats["checked_out"] == stats["cl_active"] == 3
    assert stats["pool_size"] == 8  # two pools of 4
    assert stats["overflow_max"] == 4
    assert stats["checkouts"] >= 5 + 2 + 3 + 1
    assert stats["connections_created"] >= 3
    assert stats["wait_queue"] == 0


def test_the_table_has_one_row_per_alias_and_one_per_process(spawn_worker, pool_stats):
    first = spawn_worker(hold=1)
    second = spawn_worker(hold=0)

    result = pool_stats()

    assert result.returncode == 0, result.stderr
    assert "ACTIVE" in result.stdout and "IDLE" in result.stdout
    table = result.stdout.split("\n\n")[1].splitlines()  # after the header
    assert table[0].startswith("ALIAS") and max(map(len, table)) <= 100
    assert "default (2 processes)" in result.stdout
    assert f"pid {first.pid}" in result.stdout
    assert f"pid {second.pid}" in result.stdout


def test_snapshots_are_private_to_the_user(spawn_worker, stats_dir):
    worker = spawn_worker()

    assert stat.S_IMODE(stats_dir.stat().st_mode) == 0o700
    (snapshot,) = store.snapshot_files(stats_dir)
    assert f"proc-{worker.pid}-" in snapshot.name
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600


def test_a_worker_that_exits_removes_its_snapshot_and_keeps_its_counters(
    spawn_worker, pool_stats, stats_dir
):
    leaving = spawn_worker(requests=4)
    staying = spawn_worker(requests=1)
    before = as_json(pool_stats("--format", "json"))["aliases"]["default"]

    assert leaving.stop() == 0

    after = as_json(pool_stats("--format", "json"))["aliases"]["default"]
    assert [p["pid"] for p in after["per_process"]] == [staying.pid]
    assert not [path for path in store.snapshot_files(stats_dir) if f"-{leaving.pid}-" in path.name]
    assert after["exited_processes"]["checkouts"] >= 4
    total_before = before["stats"]["checkouts"]
    total_after = after["stats"]["checkouts"] + after["exited_processes"]["checkouts"]
    assert total_after >= total_before


def test_no_pools_anywhere_is_said_plainly_with_the_fix(pool_stats):
    result = pool_stats()

    assert result.returncode == 0
    assert "No process has published pool statistics" in result.stdout
    assert "DATAFLOW_STATS_DIR" in result.stdout


def test_the_workers_publisher_thread_reports_changes_on_its_own(spawn_worker, pool_stats):
    worker = spawn_worker(hold=2)

    worker.send("release 1")  # no explicit publish: the background thread must notice

    deadline = time.monotonic() + 10
    while True:
        report = json.loads(pool_stats("--format", "json").stdout)
        (process,) = report["aliases"]["default"]["per_process"]
        if process["stats"]["checked_out"] == 1:
            break
        assert time.monotonic() < deadline, "the publisher never rewrote the snapshot"
        time.sleep(0.2)
    assert process["pid"] == worker.pid
