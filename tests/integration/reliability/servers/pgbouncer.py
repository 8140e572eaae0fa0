"""Debian's PgBouncer, in transaction mode, in front of the dedicated PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from tests.integration.reliability.servers.base import (
    HOST,
    PGBOUNCER_PORT,
    ROOT,
    ServerError,
    as_user,
    chown,
    locked,
    run_command,
    wait_for,
)
from tests.integration.reliability.servers.postgres import DedicatedPostgres


class PgBouncer:
    """Debian's PgBouncer in transaction mode in front of the dedicated PostgreSQL."""

    name = "pgbouncer"
    user = "postgres"

    def __init__(self, port: int = PGBOUNCER_PORT, root: Path = ROOT) -> None:
        self.port = port
        self.upstream = DedicatedPostgres(root=root)
        self.dir = root / "pgbouncer"
        self.ini = self.dir / "pgbouncer.ini"
        self.pid_file = self.dir / "pgbouncer.pid"
        self.log = self.dir / "pgbouncer.log"

    def config(self) -> str:
        return f"""\
[databases]
; Every database of the upstream server, under its own name.
* = host={HOST} port={self.upstream.port}

[pgbouncer]
listen_addr = {HOST}
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir / "userlist.txt"}
admin_users = postgres
stats_users = postgres
pool_mode = transaction
; LIFO (the default, said aloud): a client gets the server session used last.
server_round_robin = 0
default_pool_size = 40
max_client_conn = 1000
server_idle_timeout = 30
; Forget the pools of databases nobody used for a minute (test databases come and go).
autodb_idle_timeout = 60
logfile = {self.log}
pidfile = {self.pid_file}
"""

    def connect(self, dbname: str = "pgbouncer", timeout: int = 2):
        import psycopg

        return psycopg.connect(
            host=HOST,
            port=self.port,
            user="postgres",
            dbname=dbname,
            connect_timeout=timeout,
            autocommit=True,
        )

    def accepting(self) -> bool:
        try:
            with self.connect(timeout=1) as connection:
                connection.execute("SHOW VERSION")
        except Exception:
            return False
        return True

    def server_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def start(self) -> None:
        executable = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(executable).exists():
            raise ServerError("PgBouncer is not installed: apt-get install pgbouncer")
        self.dir.mkdir(parents=True, exist_ok=True)
        chown(self.dir, self.user)
        for path, text in (
            (self.ini, self.config()),
            (self.dir / "userlist.txt", '"postgres" ""\n'),
        ):
            path.write_text(text)
            chown(path, self.user)
        run_command([*as_user(self.user), executable, "-d", "-q", str(self.ini)], "pgbouncer")
        wait_for(self.accepting, f"PgBouncer on port {self.port}")

    def stop(self) -> None:
        pid = self.server_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.server_pid() == pid and time.monotonic() < deadline:
            time.sleep(0.02)

    def up(self) -> bool:
        self.upstream.up()
        if self.accepting():
            return False
        with locked():
            if self.accepting():
                return False
            self.stop()
            self.start()
        return True

    def down(self) -> None:
        with locked():
            self.stop()
