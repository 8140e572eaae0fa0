"""A throwaway MariaDB (``mariadb-install-db`` once, then ``mariadbd`` as ``mysql``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.integration.reliability.servers.base import (
    HOST,
    MARIADB_PORT,
    ROOT,
    ServerError,
    as_user,
    chown,
    locked,
    run_command,
    wait_for,
)


class DedicatedMariaDB:
    """A throwaway MariaDB data directory run by a ``mariadbd`` of its own."""

    name = "mariadb"
    user = "mysql"

    def __init__(self, port: int = MARIADB_PORT, root: Path = ROOT) -> None:
        self.port = port
        self.data = root / "mariadb"
        self.run_dir = root / "mariadb-run"
        self.socket = self.run_dir / "mariadbd.sock"
        self.pid_file = self.run_dir / "mariadbd.pid"
        self.log = root / "mariadb.log"

    def connect(self, database: str | None = None, timeout: int = 2):
        import MySQLdb

        options = {"database": database} if database else {}
        connection = MySQLdb.connect(
            host=HOST,
            port=self.port,
            user="root",
            password="",
            connect_timeout=timeout,
            **options,
        )
        connection.autocommit(True)
        return connection

    def accepting(self) -> bool:
        try:
            self.connect(timeout=1).close()
        except Exception:
            return False
        return True

    def _initialise(self) -> None:
        if (self.data / "mysql").is_dir():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        chown(self.data, self.user)
        user = ["--user=mysql"] if as_user(self.user) else []
        run_command(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.data}",
                *user,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            "mariadb-install-db",
            timeout=120,
        )

    def server_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self, wait: bool = True) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        chown(self.run_dir, self.user)
        if not self.log.exists():
            self.log.touch()
        chown(self.log, self.user)
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        user = ["--user=mysql"] if as_user(self.user) else []
        argv = [
            mariadbd,
            "--no-defaults",
            f"--datadir={self.data}",
            f"--port={self.port}",
            f"--bind-address={HOST}",
            f"--socket={self.socket}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log}",
            *user,
            "--max-connections=300",
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-log-at-trx-commit=2",
            "--skip-log-bin",
            "--performance-schema=OFF",
        ]
        # Its own session: the server outlives the process that started it.
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if wait:
            wait_for(self.accepting, f"MariaDB on port {self.port}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGTERM: a normal shutdown) and wait until it has exited."""
        pid = self.server_pid()
        if pid is None:
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + 60
        while self.server_pid() == pid:
            if time.monotonic() > deadline:
                raise ServerError(f"mariadbd {pid} did not stop")
            time.sleep(0.02)

    def up(self) -> bool:
        if self.accepting():
            return False
        with locked():
            if self.accepting():
                return False
            self._initialise()
            self.stop()
            self.start()
        return True

    def down(self) -> None:
        with locked():
            self.stop()
