"""Below its limit, a pool does not lend a connection parked by a live, idle thread: it
opens a new one (docs/design.md, "Growing beats taking a parked connection"). When that
connect fails (the server's or the role's connection limit) or is slower than
pool_timeout, the borrower takes the parked connection instead, as it would with thread
affinity off, rather than failing while the pool holds an idle connection.

Long-lived threads park their connections: executor threads of
``sync_to_async(thread_sensitive=False)`` / ``asyncio.to_thread`` with the
``close_old_connections()`` framing (Channels' ``database_sync_to_async``), Celery
thread-pool workers, gthread workers."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from tests.backends.helpers import admin_cursor, sessions_on

pytestmark = pytest.mark.django_db(transaction=True)


def wrapper_for(settings_dict, alias="default"):
    return connections[alias].__class__(settings_dict, alias)


def unit_of_work(settings_dict):
    """What a long-lived worker thread does per task: close_old_connections() around a
    query (Channels' database_sync_to_async, Celery's fix-up). Its wrapper is kept in
    the thread (as Django keeps connections in a thread-local) while the caller keeps
    the returned function."""
    local = threading.local()

    def work():
        wrapper = getattr(local, "wrapper", None)
        if wrapper is None:
            wrapper = local.wrapper = wrapper_for(settings_dict)
        wrapper.close_if_unusable_or_obsolete()  # close_old_connections(): start
        try:
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone()[0]
        finally:
            wrapper.close_if_unusable_or_obsolete()  # close_old_connections(): end

    return work


def one_query_in_new_thread(settings_dict):
    result = []

    def run():
        wrapper = wrapper_for(settings_dict)
        try:
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT 1")
                result.append(cursor.fetchone()[0])
        except Exception as error:  # reported to the test
            result.append(error)
        finally:
            wrapper.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return result[0]


@pytest.fixture
def limited_role(vendor):
    """A role allowed one session on the server (a server budget already used up by
    other processes, in miniature)."""
    name = f"dataflow_limited_{os.getpid()}"
    db = connections["default"].settings_dict["NAME"]
    if vendor == "postgresql":
        with admin_cursor(vendor) as cursor:
            cursor.execute(f"DROP ROLE IF EXISTS {name}")
            cursor.execute(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT 1")
            cursor.execute(f'GRANT CONNECT ON DATABASE "{db}" TO {name}')
        try:
            yield name, ""
        finally:
            connections.close_all()
            from django_dataflow.pool import registry

            registry.close_pools()
            with admin_cursor(vendor) as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    [name],
                )
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [name]
                    )
                    if cursor.fetchone()[0] == 0:
                        break
                    time.sleep(0.05)
                cursor.execute(f'REVOKE CONNECT ON DATABASE "{db}" FROM {name}')
                cursor.execute(f"DROP ROLE {name}")
    elif vendor == "mysql":
        with admin_cursor(vendor) as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{name}'@'%%'")
            cursor.execute(
                f"CREATE USER '{name}'@'%%' IDENTIFIED BY '' WITH MAX_USER_CONNECTIONS 1"
            )
            cursor.execute(f"GRANT ALL ON `{db}`.* TO '{name}'@'%%'")
        try:
            yield name, ""
        finally:
            connections.close_all()
            from django_dataflow.pool import registry

            registry.close_pools()
            with admin_cursor(vendor) as cursor:
                cursor.execute(f"DROP USER IF EXISTS '{name}'@'%%'")
    else:
        pytest.skip("SQLite has no server connection limit")


def test_a_failed_connect_below_the_limit_falls_back_to_a_parked_connection(
    limited_role,
):
    """The role's only session is the worker's parked connection: the new connect fails,
    and the request gets the parked connection, as with ``pool_thread_affinity: False``
    or Django's stock backend (which closes the worker's connection when its task ends)."""
    user, password = limited_role
    settings_dict = {
        **connections["default"].settings_dict,
        "USER": user,
        "PASSWORD": password,
        "POOL": {
            "pool_size": 2,
            "pool_max_overflow": 2,
            "pool_timeout": 5,
        },
    }
    # A long-lived worker thread (an executor thread, a Celery thread worker) runs a
    # task and goes idle; its connection is returned (parked, with thread affinity).
    # (``work`` keeps the worker's wrapper alive, as Django's thread-local does.)
    work = unit_of_work(settings_dict)
    with ThreadPoolExecutor(max_workers=1) as executor:
        assert executor.submit(work).result(10) == 1
        # Another thread (a request) queries: the pool has one idle connection.
        result = one_query_in_new_thread(settings_dict)
    assert result == 1, f"failed although the pool had an idle connection: {result!r}"


class SlowConnectProxy:
    """A TCP relay to the database server that delays each new session by
    ``delay`` seconds (a server slow to accept sessions under load, a TLS handshake
    over a long link). Real sockets both ways."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.delay = 0.0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, self.delay), daemon=True).start()

    def _serve(self, client: socket.socket, delay: float) -> None:
        time.sleep(delay)
        if self.closed:
            client.close()
            return
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        self.sockets += [client, server]
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pumps; the server sees EOF
            with contextlib.suppress(OSError):
                sock.close()


def test_a_connect_slower_than_the_timeout_falls_back_to_a_parked_connection(vendor):
    """New sessions take 3 s, pool_timeout is 1 s: the request gets the worker's parked
    connection when its wait ends, instead of a PoolTimeout."""
    if vendor == "sqlite":
        pytest.skip("SQLite has no network connect")
    base = connections["default"].settings_dict
    proxy = SlowConnectProxy(base["HOST"], int(base["PORT"]))
    settings_dict = {
        **base,
        "PORT": str(proxy.port),
        "POOL": {
            "pool_size": 2,
            "pool_max_overflow": 2,
            "pool_timeout": 1.0,
        },
    }
    try:
        work = unit_of_work(settings_dict)  # keeps the worker's wrapper alive
        with ThreadPoolExecutor(max_workers=1) as executor:
            assert executor.submit(work).result(10) == 1
            proxy.delay = 3.0  # from now on, a new session takes longer than pool_timeout
            result = one_query_in_new_thread(settings_dict)
            # (the stats the timeout was raised with)
            from django_dataflow.pool import registry

            stats = [p.get_stats() for p in registry.all_pools("default")]
        assert result == 1, (
            f"the request failed ({result!r}) while the pool reported an idle "
            f"connection: {[(s['idle_connections'], s['checked_out']) for s in stats]}"
        )
    finally:
        connections.close_all()
        from django_dataflow.pool import registry

        registry.close_pools()
        proxy.close()
        # Let the pool's opener thread finish its delayed connect (and close it).
        for thread in threading.enumerate():
            if thread.name.startswith("dataflow-open-"):
                thread.join(10)
        # Every pool is closed: the sessions (relayed ones end a moment after their
        # sockets close) must be gone before the test database is dropped.
        deadline = time.monotonic() + 10
        while sessions_on(vendor, base["NAME"]) and time.monotonic() < deadline:
            time.sleep(0.05)
