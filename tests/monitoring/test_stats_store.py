"""The snapshot directory: private, atomic, pruned of dead processes, counters kept."""

from __future__ import annotations

import os
import stat

import pytest

from django_dataflow import conf
from django_dataflow.monitoring import store
from tests.monitoring.factories import dead_pid, pool_entry, snapshot, write


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_directory_and_its_per_user_parent_are_created_private(tmp_path):
    directory = tmp_path / "django-dataflow-0" / "project-abc"

    store.ensure_dir(directory)

    assert mode(directory) == mode(directory.parent) == 0o700


def test_a_too_open_directory_is_refused_with_the_fix_and_left_alone(tmp_path):
    directory = tmp_path / "stats"
    directory.mkdir(mode=0o777)
    os.chmod(directory, 0o777)

    with pytest.raises(store.StatsDirError, match=r"mode 0777.*chmod 700"):
        store.ensure_dir(directory)

    assert mode(directory) == 0o777


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_directory_planted_by_another_user_is_refused(tmp_path):
    planted = tmp_path / "django-dataflow-0"
    planted.mkdir(mode=0o700)
    os.chown(planted, 12345, 12345)

    with pytest.raises(store.StatsDirError, match="belongs to uid 12345"):
        store.ensure_dir(planted / "project")


def test_a_symlink_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "stats").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(store.StatsDirError, match="symlink"):
        store.ensure_dir(tmp_path / "stats")


def test_writes_are_atomic_and_owner_only(tmp_path):
    target = tmp_path / "snapshot.json"

    store.write_json(target, {"a": 1})
    store.write_json(target, {"a": 2})

    assert store.read_json(target) == {"a": 2}
    assert mode(target) == 0o600
    assert os.listdir(tmp_path) == ["snapshot.json"]  # no temporary file left


def test_a_live_process_is_kept_and_a_dead_one_pruned_with_its_counters_retired(tmp_path):
    live = write(tmp_path, snapshot({"default": pool_entry(checkouts=5)}))
    gone = snapshot(
        {"default": pool_entry(checkouts=7, invalidated_by_reason={"recycle": 1})}, pid=dead_pid()
    )
    gone_path = write(tmp_path, gone)

    snapshots = store.read_snapshots(tmp_path, stale_after=60, prune=True)  # a publisher

    assert [s["pid"] for s in snapshots] == [os.getppid()]
    assert live.exists() and not gone_path.exists()
    exited = store.exited_counters(tmp_path, set())
    assert exited["default"]["checkouts"] == 7
    assert exited["default"]["invalidated_by_reason"] == {"recycle": 1}


def test_a_reused_pid_counts_as_dead(tmp_path):
    reused = snapshot({"default": pool_entry()})
    reused["started"] = (reused["started"] or 0) + 1  # another process had this pid
    write(tmp_path, reused)

    assert store.read_snapshots(tmp_path, stale_after=60) == []


def test_another_pid_namespace_is_judged_by_age(tmp_path):
    import time

    fresh = snapshot({"default": pool_entry()}, pid=1, namespace="pid:[other]", instance="a")
    old = snapshot({"default": pool_entry()}, pid=2, namespace="pid:[other]", instance="b")
    old["published_at"] = time.time() - 120
    write(tmp_path, fresh)
    write(tmp_path, old)

    assert [s["pid"] for s in store.read_snapshots(tmp_path, stale_after=60)] == [1]


def test_retiring_the_same_process_twice_counts_it_once(tmp_path):
    gone = snapshot({"default": pool_entry(checkouts=3)}, pid=dead_pid())
    path = write(tmp_path, gone)
    store.retire(tmp_path, [(path, gone)])
    write(tmp_path, gone)  # e.g. a pruner that crashed before deleting it

    store.read_snapshots(tmp_path, stale_after=60, prune=True)

    assert store.exited_counters(tmp_path, set())["default"]["checkouts"] == 3


def test_a_retired_instance_that_is_alive_again_is_not_counted_twice(tmp_path):
    gone = snapshot({"default": pool_entry(checkouts=3)}, pid=dead_pid())
    store.retire(tmp_path, [(write(tmp_path, gone), gone)])

    assert store.exited_counters(tmp_path, {gone["instance"]}) == {}


def test_old_retirements_fold_into_a_base_that_still_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "RECENT_RETIRED", 2)
    for number in range(4):
        gone = snapshot({"default": pool_entry(checkouts=1)}, pid=dead_pid(), instance=f"i{number}")
        store.retire(tmp_path, [(write(tmp_path, gone), gone)])

    retired = store.read_retired(tmp_path)
    assert len(retired["recent"]) == 2
    assert store.exited_counters(tmp_path, set())["default"]["checkouts"] == 4


def test_two_projects_get_different_default_directories(monkeypatch):
    from django.conf import settings

    first = conf.default_stats_dir()
    monkeypatch.setattr(settings, "SETTINGS_MODULE", "otherproject.settings")

    second = conf.default_stats_dir()

    assert first != second
    assert first.parent == second.parent
    assert first.parent.name == f"django-dataflow-{os.getuid()}"
    assert second.name.startswith("otherproject.settings-")


def test_the_setting_wins_over_the_environment_variable(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("DATAFLOW_STATS_DIR", str(tmp_path / "env"))
    assert conf.stats_dir() == tmp_path / "env"

    settings.DATAFLOW_STATS_DIR = str(tmp_path / "setting")

    assert conf.stats_dir() == tmp_path / "setting"
