"""Celery prefork workers (Redis broker) running tasks that use the database after fork.

The parent process holds pooled connections when it forks its two children. The
promise: every task succeeds; each child opens connections of its own (server sessions
of different children are disjoint, none is the parent's); the parent's connections
survive its children; the ledger holds exactly the tasks that succeeded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from tests.integration.reliability import sessions, webserver
from tests.integration.reliability.counterapp.ledger import compare
from tests.integration.reliability.webserver import read_ledger

pytestmark = pytest.mark.reliability

TASKS = 60
CONCURRENCY = 2
BROKER = "redis://127.0.0.1:6379/12"


@pytest.fixture(scope="module")
def redis_broker():
    """Redis on 127.0.0.1:6379, started here if it is not running."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
             "--save", "", "--appendonly", "no"],
            check=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
    return BROKER


def test_prefork_children_use_connections_of_their_own_after_fork(
    redis_broker, dedicated_postgres, web_database, tmp_path, figures
):
    from celery import Celery

    counter = "celery-prefork"
    queue = f"dataflow-reliability-{os.getpid()}"
    preload_file = tmp_path / "preload"
    # One connection per child (one task at a time); the overflow one is for the parent,
    # which holds two when it forks (preload.py).
    url = webserver.database_url(web_database, pool_size=1, pool_max_overflow=1, pool_timeout=10)
    env = webserver.environment(
        url,
        tmp_path / "stats",
        RELIABILITY_BROKER=redis_broker,
        RELIABILITY_QUEUE=queue,
        RELIABILITY_PRELOAD_FILE=str(preload_file),
    )
    with dedicated_postgres.connect(dbname=web_database) as connection:
        connection.execute("INSERT INTO counterapp_counter (name, value) VALUES (%s, 0)", [counter])
    argv = [
        sys.executable, "-m", "celery", "-A", "tests.integration.reliability.celery_app", "worker",
        "--pool", "prefork", "--concurrency", str(CONCURRENCY), "--queues", queue,
        "--hostname", f"{queue}@%h", "--without-heartbeat", "--without-gossip",
        "--without-mingle", "--loglevel", "warning",
    ]  # fmt: skip
    worker = webserver.Server(argv, env, 0, tmp_path / "celery.log")
    client = Celery("client", broker=redis_broker, backend=redis_broker)
    try:
        started = time.monotonic()
        pending = [
            client.send_task(
                "tests.integration.reliability.celery_app.count",
                args=[counter, f"{counter}:{n}"],
                queue=queue,
            )
            for n in range(TASKS)
        ]
        results, failures = [], []
        for result in pending:
            try:
                results.append((result.id, result.get(timeout=60)))
            except Exception as error:  # a failed task: its error is kept
                failures.append(repr(error))
        seconds = time.monotonic() - started
        master_pid, held, idle = (int(v) for v in preload_file.read_text().split())
        on_server = sessions.sessions_on(dedicated_postgres, web_database)
    finally:
        worker.stop()
        client.close()

    used: dict[int, set[int]] = defaultdict(set)
    for _id, body in results:
        used[body["pid"]].add(body["session"])
    figures.record(
        "celery prefork",
        tasks=TASKS,
        failed=len(failures),
        seconds_including_worker_start=seconds,
        children=len(used),
        sessions_per_child=sorted(len(s) for s in used.values()),
    )
    assert not failures, failures[:3]
    assert len(used) == CONCURRENCY
    assert master_pid not in used
    children = sorted(used)
    assert not used[children[0]] & used[children[1]], "two children shared a session"
    assert not any({held, idle} & s for s in used.values()), "a child used the parent's"
    assert {held, idle} <= on_server, "a child ended the parent's connections"
    assert all(len(s) == 1 for s in used.values())  # one task at a time: one connection
    compare(
        read_ledger(dedicated_postgres, web_database, counter),
        [f"{counter}:{n}" for n in range(TASKS)],
    )
