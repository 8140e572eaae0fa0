"""Statistics of processes that come and go: gunicorn's ``--max-requests`` recycling
and ``pool_stats`` after many restarts.

(uvicorn's workers, its own and gunicorn's ``uvicorn.workers.UvicornWorker``, end by a
re-raised SIGTERM after their graceful shutdown, so no exit handler runs in them: their
last interval is lost as after a SIGKILL. Documented in docs/deployment.md.)

docs/monitoring.md: "A process removes its snapshot when it exits", "Counters of
processes that exited are kept (in retired.json), so Prometheus counters never go down
when a worker is recycled", and only "a process killed with SIGKILL loses the
increments of its last interval".
"""

from __future__ import annotations

import os
import time

from django_dataflow.monitoring import store
from tests.integration.processes import harness


def _retired_checkouts(stats_dir) -> int:
    return int(store.exited_counters(stats_dir, set()).get("default", {}).get("checkouts", 0))


def test_counters_of_workers_recycled_within_their_first_publishing_interval_are_kept(
    servers, tmp_path, vendor, database
):
    """gunicorn recycles a worker after 3 requests. Each worker serves them well within
    the default publishing interval (2 s) of its first request, then exits normally
    (atexit runs). Its checkouts must still reach retired.json: one per request."""
    stats_dir = tmp_path / "stats"
    env = harness.environment(vendor, database, stats_dir, PROCS_STATS_INTERVAL="2.0")
    port = harness.free_port()
    server = harness.Server(
        harness.gunicorn(port, "--max-requests", "3"), env, port, tmp_path / "server.log"
    )
    servers.append(server)
    server.wait_ready()  # /whoami/ does not touch the database (and counts as a request)
    pids = []
    requests = 0
    for _ in range(9):
        status, body = harness.get(port, "/q/")
        assert status == 200, body
        pids.append(body["pid"])
        requests += 1
    assert len(set(pids)) >= 3, pids  # recycled at least twice
    server.stop()
    assert requests == 9
    retired = _retired_checkouts(stats_dir)
    assert retired == requests, (
        f"{requests} requests (one checkout each) were served by {len(set(pids))} "
        f"worker processes that all exited normally, but retired.json counts {retired} "
        f"checkouts: a worker that exits before its first snapshot is written retires "
        f"nothing"
    )


def test_pool_stats_after_many_worker_restarts_lists_only_live_workers(
    servers, tmp_path, vendor, database
):
    """2 gthread workers recycled every 5 requests, 60
    requests. Afterwards the directory holds one snapshot per live worker that has a
    pool, every listed process is alive and fresh, and no temporary files."""
    stats_dir = tmp_path / "stats"
    env = harness.environment(vendor, database, stats_dir)
    port = harness.free_port()
    server = harness.Server(
        harness.gunicorn(
            port, "--max-requests", "5", "--threads", "2", worker_class="gthread", workers=2
        ),
        env,
        port,
        tmp_path / "server.log",
    )
    servers.append(server)
    server.wait_ready()
    pids = set()
    for _ in range(60):
        status, body = harness.get(port, "/q/")
        assert status == 200, body
        pids.add(body["pid"])
        time.sleep(0.05)
    time.sleep(1.5)
    stats = harness.pool_stats(env)
    files = sorted(os.listdir(stats_dir))
    live = [name for name in files if name.startswith("proc-")]
    alias = stats["aliases"]["default"]
    assert len(pids) >= 8
    assert not [name for name in files if name.startswith(".tmp")], files
    assert len(live) == alias["processes"] <= 2, (files, alias["processes"])
    for process in alias["per_process"]:
        assert not process["stale"]
        os.kill(process["pid"], 0)
    server.stop()
    assert [name for name in os.listdir(stats_dir) if name.startswith("proc-")] == []
