"""Do pooled connections end cleanly when a server process exits?

Django's stock backends close their connections when the process exits (the DB-API
objects are finalized: mysqlclient sends COM_QUIT, libpq a Terminate message), so the
database server sees a normal disconnect. A pooled connection must end the same way
when a gunicorn worker is recycled (``--max-requests``), reloaded (HUP), stopped
(TERM), or when ``runserver``'s autoreloader replaces its child. Otherwise MariaDB
logs "Aborted connection ... (Got an error reading communication packets)" and counts
``Aborted_clients`` for every worker restart, and PostgreSQL logs "unexpected EOF on
client connection" (with "... with an open transaction" at COMMERROR level): noise that
monitoring treats as network faults.

The server's log tells a clean end from an abrupt one: MariaDB logs aborted
connections at ``log_warnings >= 2`` (its default); for PostgreSQL the project's
sessions run with ``log_min_messages = debug1`` (set per session, superuser), at which
PostgreSQL logs an end without Terminate.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.processes import harness

STOCK_ENGINE = {
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
}


def _serve(
    servers,
    tmp_path,
    vendor,
    database,
    argv_for,
    *,
    engine=None,
    path="/q/",
    requests=4,
    settle=1.6,
    stop=None,
):
    """Start a server, send ``requests`` requests, let the housekeeper run (``settle``),
    stop it; return (the server, the sessions that served)."""
    extra = {"PROCS_ENGINE": engine} if engine else {}
    env = harness.environment(vendor, database, tmp_path / "stats", **extra)
    port = harness.free_port()
    server = harness.Server(argv_for(port), env, port, tmp_path / "server.log")
    servers.append(server)
    server.wait_ready()
    sessions = set()
    for _ in range(requests):
        status, body = harness.get(port, path)
        assert status == 200, body
        sessions.add(body["session"])
    time.sleep(settle)  # the pool's housekeeper runs about once a second
    if stop is None:
        assert server.stop() == 0, server.output()
    else:
        stop(server)
    return server, sessions


def _assert_clean(vendor, log, sessions, server):
    assert not harness.wait_gone(vendor, sessions), "sessions outlived the process"
    time.sleep(0.5)  # the server writes its log line as the session ends
    unclean = log.unclean_ends(sessions)
    assert not unclean, (
        f"{len(unclean)} of {len(sessions)} pooled sessions were not closed when the "
        f"process exited; the database server logged:\n" + "\n".join(unclean.values())
    )
    output = server.output()
    assert "Traceback" not in output and "Exception in thread" not in output, output[-3000:]


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_gunicorn_worker_stopped_with_term_closes_its_pooled_sessions(
    servers, tmp_path, server_vendor, database, worker_class
):
    log = harness.ServerLog(server_vendor)
    server, sessions = _serve(
        servers,
        tmp_path,
        server_vendor,
        database,
        lambda port: harness.gunicorn(
            port,
            *(["--threads", "4"] if worker_class == "gthread" else []),
            worker_class=worker_class,
        ),
    )
    _assert_clean(server_vendor, log, sessions, server)


def test_stock_backend_closes_its_sessions_at_exit_control(
    servers, tmp_path, server_vendor, database
):
    """Control: the same server and detection with Django's own backend pass."""
    log = harness.ServerLog(server_vendor)
    server, sessions = _serve(
        servers,
        tmp_path,
        server_vendor,
        database,
        lambda port: harness.gunicorn(port, worker_class="sync"),
        engine=STOCK_ENGINE[server_vendor],
    )
    _assert_clean(server_vendor, log, sessions, server)


def test_gunicorn_worker_recycled_by_max_requests_closes_its_pooled_session(
    servers, tmp_path, server_vendor, database
):
    log = harness.ServerLog(server_vendor)
    env = harness.environment(server_vendor, database, tmp_path / "stats")
    port = harness.free_port()
    server = harness.Server(
        harness.gunicorn(port, "--max-requests", "3"), env, port, tmp_path / "server.log"
    )
    servers.append(server)
    server.wait_ready()  # (its /whoami/ is the worker's first request of three)
    recycled = {}
    for _ in range(2):  # the first worker's two requests, a housekeeping pass between
        status, body = harness.get(port, "/q/")
        assert status == 200, body
        recycled[body["pid"]] = body["session"]
        time.sleep(1.6)
    assert len(recycled) == 1
    ((old_pid, session),) = recycled.items()
    # The worker exits after its second request; gunicorn starts another.
    deadline = time.monotonic() + 20
    while True:
        status, body = harness.get(port, "/q/")
        if status == 200 and body["pid"] != old_pid:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert not harness.wait_gone(server_vendor, {session})
    time.sleep(0.5)
    unclean = log.unclean_ends({session})
    server.stop()
    assert not unclean, f"the recycled worker's session ended abruptly: {unclean}"


def test_runserver_autoreload_restart_and_ctrl_c_close_the_pooled_sessions(
    servers, tmp_path, server_vendor, database
):
    """runserver (threaded, with the autoreloader): a code change makes the child exit
    (sys.exit(3)) and the reloader start a new one; Ctrl-C then stops both."""
    log = harness.ServerLog(server_vendor)
    env = harness.environment(server_vendor, database, tmp_path / "stats")
    port = harness.free_port()
    server = harness.Server(
        [harness.PY, "-m", "django", "runserver", f"127.0.0.1:{port}"],
        env,
        port,
        tmp_path / "server.log",
    )
    servers.append(server)
    server.wait_ready()
    sessions, pids = set(), set()
    for _ in range(4):
        status, body = harness.get(port, "/q/")
        assert status == 200, body
        sessions.add(body["session"])
        pids.add(body["pid"])
    time.sleep(1.6)
    (
        Path(__file__).parent / "webproject" / "urls.py"
    ).touch()  # the autoreloader restarts the child
    deadline = time.monotonic() + 30
    while True:
        status, body = harness.get(port, "/q/", timeout=2)
        if status == 200 and body["pid"] not in pids:
            break
        assert time.monotonic() < deadline, server.output()[-2000:]
        time.sleep(0.3)
    old_sessions = set(sessions)
    assert not harness.wait_gone(server_vendor, old_sessions), (
        "the old child's sessions outlived it"
    )
    sessions.add(body["session"])
    time.sleep(1.6)
    os.killpg(server.process.pid, signal.SIGINT)  # Ctrl-C: SIGINT to the process group
    server.process.wait(timeout=30)
    _assert_clean(server_vendor, log, sessions, server)
