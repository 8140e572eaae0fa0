"""The snapshot directory cannot be turned against the host, and readers never crash,
hang or write: they skip what is not a valid snapshot and report the rest."""

from __future__ import annotations

import io
import json
import os
import stat
import threading

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.test import RequestFactory

from django_dataflow import conf
from django_dataflow.monitoring import render, safedir, store, views
from django_dataflow.monitoring.aggregate import collect, report_to_json
from tests.monitoring.factories import dead_pid, pool_entry, snapshot, write


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def listing(path) -> list[str]:
    return sorted(os.listdir(path))


def health(directory, settings):
    settings.DATAFLOW_STATS_DIR = str(directory)
    request = RequestFactory().get("/dataflow/health/")
    request.user = AnonymousUser()
    return views.health_view(request)


# -- readers change nothing ------------------------------------------------------------


def test_an_anonymous_health_probe_leaves_a_shared_directory_alone(tmp_path, settings):
    shared = tmp_path / "x"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # a /tmp-like directory named as DATAFLOW_STATS_DIR

    response = health(shared, settings)

    assert response.status_code == 200
    assert mode(shared) == 0o1777  # never chmodded
    assert listing(shared) == []


def test_pool_stats_reads_a_loose_directory_without_changing_it(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o700)
    stray = write(loose, snapshot({"default": pool_entry()}, pid=dead_pid()))
    os.chmod(loose, 0o755)

    with pytest.raises(Exception, match=r"mode 0755.*chmod 700"):
        call_command("pool_stats", "--stats-dir", str(loose), stdout=io.StringIO())

    assert mode(loose) == 0o755
    assert listing(loose) == [stray.name]  # nothing deleted, no retired.json, no .lock


def test_readers_leave_exited_processes_to_the_publishers_but_count_them(tmp_path):
    live = write(tmp_path, snapshot({"default": pool_entry(checkouts=5)}))
    gone = write(tmp_path, snapshot({"default": pool_entry(checkouts=7)}, pid=dead_pid()))

    report = collect(directory=tmp_path, include_self=False)

    assert listing(tmp_path) == sorted([live.name, gone.name])
    assert [p.pid for p in report.aliases["default"].processes] == [os.getppid()]
    assert report.aliases["default"].exited["checkouts"] == 7


# -- the directory ---------------------------------------------------------------------


def test_a_directory_open_to_others_is_refused_not_chmodded(tmp_path):
    directory = tmp_path / "stats"
    directory.mkdir()
    os.chmod(directory, 0o755)

    with pytest.raises(store.StatsDirError, match="mode 0755"):
        store.ensure_dir(directory)
    assert mode(directory) == 0o755


def test_a_directory_under_a_parent_others_can_write_is_refused(tmp_path):
    parent = tmp_path / "shared"
    parent.mkdir()
    os.chmod(parent, 0o777)  # not sticky: anyone may rename our directory away

    with pytest.raises(store.StatsDirError, match="can be written by other users"):
        store.ensure_dir(parent / "stats")
    assert not (parent / "stats").exists()


def test_a_sticky_parent_like_tmp_is_fine(tmp_path):
    parent = tmp_path / "tmp"
    parent.mkdir()
    os.chmod(parent, 0o1777)

    store.ensure_dir(parent / "django-dataflow-1" / "project")

    assert mode(parent / "django-dataflow-1") == mode(parent / "django-dataflow-1/project")
    assert mode(parent / "django-dataflow-1/project") == 0o700


def test_a_directory_swapped_for_a_symlink_is_never_written_through(tmp_path):
    stats = tmp_path / "stats"
    store.ensure_dir(stats)
    attacker = tmp_path / "attacker"
    attacker.mkdir(mode=0o700)
    stats.rmdir()
    stats.symlink_to(attacker)

    with pytest.raises(store.StatsDirError, match="symlink"):
        store.write_json(stats / "proc-1-x.json", {"a": 1})
    with pytest.raises(store.StatsDirError, match="symlink"):
        store.retire(stats, [(stats / "proc-1-x.json", snapshot({}, pid=1))])
    assert listing(attacker) == []


def test_a_planted_temporary_file_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    directory = tmp_path / "stats"
    store.ensure_dir(directory)
    for name in (f".tmp-{os.getpid()}-retired.json", f".tmp-{os.getpid()}-proc-1-x.json"):
        (directory / name).symlink_to(victim)

    store.retire(directory, [(directory / "proc-1-x.json", snapshot({"default": pool_entry()}))])

    assert victim.read_text() == "precious"
    assert store.exited_counters(directory, set())["default"]["checkouts"] == 0


def test_a_lock_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    directory = tmp_path / "stats"
    store.ensure_dir(directory)
    (directory / ".lock").symlink_to(victim)

    with pytest.raises(OSError):
        store.retire(directory, [(directory / "proc-1-x.json", snapshot({}))])
    assert not victim.exists()


def test_the_default_directory_prefers_the_users_runtime_directory(tmp_path, monkeypatch):
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))

    assert conf.default_stats_dir().parent == runtime / "django-dataflow"
    runtime.chmod(0o755)  # not a private runtime directory: the temporary one
    assert conf.default_stats_dir().parent.name == f"django-dataflow-{os.getuid()}"


def test_a_reader_finds_the_temporary_directory_when_workers_had_no_runtime_dir(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(conf.tempfile, "gettempdir", lambda: str(tmp_path))
    published = conf.default_stats_dir()
    store.ensure_dir(published)
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))

    assert conf.reader_stats_dir() == published


# -- readers never crash -----------------------------------------------------------------


def bad_snapshots():
    good = snapshot({"default": pool_entry()}, pid=1)
    missing = snapshot({"default": pool_entry()}, pid=1)
    del missing["pools"]["default"]["cl_waiting"]
    return {
        "pools-a-string": {**good, "pools": "oops"},
        "published-at-text": {**good, "published_at": "abc"},
        "huge-pid": {**good, "pid": 10**30},
        "missing-key": missing,
        "string-counter": {**good, "pools": {"default": {**pool_entry(), "checkouts": "9"}}},
        "not-an-object": [1, 2, 3],
    }


@pytest.mark.parametrize("name", list(bad_snapshots()))
def test_a_malformed_snapshot_is_skipped_and_the_rest_reported(tmp_path, settings, name, caplog):
    write(tmp_path, snapshot({"default": pool_entry(checked_out=1)}))
    bad = tmp_path / f"proc-1-{name}.json"
    bad.write_text(json.dumps(bad_snapshots()[name]))

    report = collect(directory=tmp_path, include_self=False)

    assert [p.pid for p in report.aliases["default"].processes] == [os.getppid()]
    assert len(report.skipped) == 1 and bad.name in report.skipped[0]
    assert bad.name in caplog.text
    assert "ALIAS" in render.report_table(report)
    json.dumps(report_to_json(report))
    assert health(tmp_path, settings).status_code == 200


def test_deeply_nested_json_is_skipped(tmp_path):
    (tmp_path / "proc-1-deep.json").write_text("[" * 200_000 + "]" * 200_000)

    report = collect(directory=tmp_path, include_self=False)

    assert "proc-1-deep.json" in report.skipped[0]


@pytest.mark.parametrize(
    "retired",
    [
        {"format": 1, "base": "oops", "recent": {}},
        {"format": 1, "base": {"default": {"checkouts": "many"}}, "recent": {}},
        {"format": 1, "base": {}, "recent": {"x": {"default": {"checkouts": [1]}}}},
        {"format": 1, "base": {}, "recent": "oops"},
    ],
)
def test_a_malformed_retired_file_is_skipped(tmp_path, retired):
    write(tmp_path, snapshot({"default": pool_entry(checkouts=3)}))
    (tmp_path / store.RETIRED).write_text(json.dumps(retired))

    report = collect(directory=tmp_path, include_self=False)

    assert report.aliases["default"].stats["checkouts"] == 3
    pytest.importorskip("prometheus_client")
    from django_dataflow.monitoring import prometheus

    assert b"django_dataflow_checkouts_total" in prometheus.exposition(report)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_a_snapshot_does_not_block(tmp_path):
    write(tmp_path, snapshot({"default": pool_entry()}))
    os.mkfifo(tmp_path / "proc-1-x.json", 0o600)
    done = []
    reader = threading.Thread(
        target=lambda: done.append(collect(directory=tmp_path, include_self=False)),
        daemon=True,
    )

    reader.start()
    reader.join(5)

    assert done, "a reader blocked on a FIFO"
    assert "not a regular file" in done[0].skipped[0]


def test_a_held_lock_blocks_neither_readers_nor_writers_for_ever(tmp_path, settings):
    pytest.importorskip("fcntl")
    import fcntl

    write(tmp_path, snapshot({"default": pool_entry()}, pid=dead_pid()))
    holder = os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # as a process stopped with SIGSTOP would
    try:
        assert health(tmp_path, settings).status_code == 200  # readers take no lock
        with (
            safedir.opened(tmp_path) as fd,
            pytest.raises(store.StatsDirError, match="held"),
            safedir.locked(fd, wait=0.2),
        ):
            pass
    finally:
        os.close(holder)
