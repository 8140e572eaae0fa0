"""A throwaway PostgreSQL cluster (``initdb`` once, then ``pg_ctl`` as ``postgres``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.integration.reliability.servers.base import (
    HOST,
    PG_PORT,
    ROOT,
    ServerError,
    as_user,
    chown,
    locked,
    run_command,
    wait_for,
)


class DedicatedPostgres:
    """A throwaway PostgreSQL cluster of the newest installed major version."""

    name = "postgresql"
    user = "postgres"

    def __init__(self, port: int = PG_PORT, root: Path = ROOT) -> None:
        self.port = port
        self.bindir = self._bindir()
        self.data = root / f"pg{self.bindir.parent.name}"
        self.run_dir = root / "pg-run"
        self.log = root / "pg.log"

    @staticmethod
    def _bindir() -> Path:
        versions = sorted(
            (
                path
                for path in Path("/usr/lib/postgresql").glob("*/bin")
                if (path / "pg_ctl").exists()
            ),
            key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        )
        if versions:
            return versions[-1]
        pg_ctl = shutil.which("pg_ctl")
        if pg_ctl is None:
            raise ServerError("PostgreSQL is not installed (no pg_ctl): apt-get install postgresql")
        return Path(pg_ctl).parent

    def connect(self, dbname: str = "postgres", timeout: int = 2):
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
            self.connect(timeout=1).close()
        except Exception:
            return False
        return True

    def _initialise(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        chown(self.data, self.user)
        run_command(
            [
                *as_user(self.user),
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
        )

    def _configure(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        chown(self.run_dir, self.user)
        # Durability is not what is tested here (a server restart keeps the OS page
        # cache), and fsync makes every shutdown checkpoint slow on a busy machine.
        settings = {
            "port": self.port,
            "listen_addresses": f"'{HOST}'",
            "unix_socket_directories": f"'{self.run_dir}'",
            "max_connections": 300,
            "shared_buffers": "'32MB'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "log_min_messages": "warning",
        }
        extra = self.data / "dataflow-reliability.conf"
        extra.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        chown(extra, self.user)
        main = self.data / "postgresql.conf"
        include = "include = 'dataflow-reliability.conf'\n"
        if include not in main.read_text():
            with main.open("a") as conf:
                conf.write(include)

    def start(self, wait: bool = True) -> None:
        self._configure()
        if not self.log.exists():
            self.log.touch()
        chown(self.log, self.user)
        run_command(
            [
                *as_user(self.user),
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-W",
                "start",
            ],
            "pg_ctl start",
        )
        if wait:
            wait_for(self.accepting, f"PostgreSQL on port {self.port}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server and wait until it has exited (``mode``: smart, fast, immediate)."""
        if not (self.data / "postmaster.pid").exists():
            return
        subprocess.run(
            [
                *as_user(self.user),
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                "stop",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )

    def up(self) -> bool:
        """Start the server unless it answers already. True if this call started it."""
        if self.accepting():
            return False
        with locked():
            if self.accepting():
                return False
            self._initialise()
            self.stop("immediate")  # a stale postmaster of an earlier run, if any
            self.start()
        return True

    def down(self) -> None:
        with locked():
            self.stop()
