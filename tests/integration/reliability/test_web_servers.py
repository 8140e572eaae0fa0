"""The example project under real web servers, with a load generator on loopback:
gunicorn with ``--preload`` and 2 sync workers, gunicorn with 2 gthread workers of 4
threads, and uvicorn (ASGI) with 2 workers, all on the dedicated PostgreSQL.

The promise: no request fails; no connection is shared between processes (the server
sessions each worker used are its own, and the preloading master's connections are
used by no worker and survive them); each worker opens at most pool_size +
pool_max_overflow connections; ``manage.py pool_stats`` run as a separate process
reports every worker; the ledger holds exactly the successful requests.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.integration.reliability import sessions, webserver
from tests.integration.reliability.counterapp.ledger import compare
from tests.integration.reliability.http_load import http_load
from tests.integration.reliability.webserver import read_ledger

pytestmark = pytest.mark.reliability

WORKERS = 2
REQUESTS_EACH = 30


SCENARIOS = {
    # name: (argv builder, pool options, clients, preload)
    "gunicorn-preload-sync": (
        lambda: webserver.gunicorn("sync", WORKERS, preload=True),
        {"pool_size": 1, "pool_max_overflow": 1},
        8,
        True,
    ),
    "gunicorn-gthread": (
        lambda: webserver.gunicorn("gthread", WORKERS, threads=4),
        {"pool_size": 3, "pool_max_overflow": 1},
        16,
        False,
    ),
    "uvicorn-asgi": (
        lambda: webserver.uvicorn(WORKERS),
        {"pool_size": 2, "pool_max_overflow": 1},
        16,
        False,
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_web_workers_serve_the_example_without_errors_or_shared_connections(
    scenario, dedicated_postgres, web_database, tmp_path: Path, figures
):
    build, pool, clients, preload = SCENARIOS[scenario]
    per_worker = pool["pool_size"] + pool["pool_max_overflow"]
    counter = f"web-{scenario}"
    url = webserver.database_url(web_database, pool_timeout=10, **pool)
    preload_file = tmp_path / "preload"
    extra = {"RELIABILITY_PRELOAD_FILE": str(preload_file)} if preload else {}
    env = webserver.environment(url, tmp_path / "stats", **extra)
    port = webserver.free_port()
    argv = build()
    argv += ["--bind", f"127.0.0.1:{port}"] if "gunicorn" in argv else ["--port", str(port)]
    with dedicated_postgres.connect(dbname=web_database) as connection:
        connection.execute("INSERT INTO counterapp_counter (name, value) VALUES (%s, 0)", [counter])

    server = webserver.Server(argv, env, port, tmp_path / "server.log")
    try:
        server.wait_ready()
        started = time.monotonic()
        responses = http_load(
            port,
            lambda c, i: (
                "/users/"
                if i % 3 == 2
                else f"/reliability/hit/?counter={counter}&id={counter}:{c}:{i}"
            ),
            clients,
            REQUESTS_EACH,
        )
        load_seconds = time.monotonic() - started
        hits = [r for r in responses if r.path.startswith("/reliability/hit/")]
        workers = {r.json()["pid"] for r in hits if r.status == 200}
        report, waited = wait_for_every_worker(env, workers)
        on_server = sessions.sessions_on(dedicated_postgres, web_database)
        master = preload_file.read_text().split() if preload else []
    finally:
        server.stop()

    failed = [r for r in responses if r.status != 200]
    used: dict[int, set[int]] = defaultdict(set)
    for response in hits:
        if response.status == 200:
            body = response.json()
            used[body["pid"]].add(body["session"])
    per_process = {p["pid"]: p["stats"] for p in report["aliases"]["default"]["per_process"]}
    created = {pid: per_process[pid]["connections_created"] for pid in workers}
    figures.record(
        f"web {scenario}",
        requests=len(responses),
        failed=len(failed),
        requests_per_second=round(len(responses) / load_seconds),
        workers=len(workers),
        sessions_per_worker=sorted(len(s) for s in used.values()),
        connections_created_per_worker=sorted(created.values()),
        limit_per_worker=per_worker,
        server_sessions_during_load=len(on_server),
        pool_stats_processes=sorted(per_process),
        pool_stats_wait_seconds=waited,
    )

    assert not failed, [(r.status, r.path, r.error or r.body[:200]) for r in failed[:5]]
    assert len(workers) == WORKERS, workers
    pids = sorted(used)
    for index, pid in enumerate(pids):  # no server session used by two processes
        for other in pids[index + 1 :]:
            assert not used[pid] & used[other], f"workers {pid} and {other} shared a session"
    assert set(per_process) >= workers, "pool_stats did not report every worker"
    assert all(count <= per_worker for count in created.values()), created
    if preload:
        master_pid, held, idle = (int(value) for value in master)
        assert master_pid not in workers
        inherited = {held, idle}
        assert not any(inherited & sessions_used for sessions_used in used.values())
        assert inherited <= on_server, "a worker ended the master's connections"
    assert len(on_server) <= WORKERS * per_worker + (2 if preload else 0)
    compare(
        read_ledger(dedicated_postgres, web_database, counter),
        [r.path.split("id=")[1] for r in hits if r.status == 200],
    )


def wait_for_every_worker(env: dict[str, str], workers: set[int]) -> tuple[dict, float]:
    """pool_stats' report once it lists every worker (they publish every 0.5 s)."""
    started = time.monotonic()
    while True:
        report = webserver.pool_stats(env)
        listed = {p["pid"] for p in report["aliases"].get("default", {}).get("per_process", [])}
        if listed >= workers or time.monotonic() - started > 15:
            return report, time.monotonic() - started
        time.sleep(0.25)
