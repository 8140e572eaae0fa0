"""What the dedicated servers share: where they live, their ports, and how to run a
command as the server's user, wait for readiness, and keep two runs from starting the
same server at once."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(os.environ.get("DATAFLOW_RELIABILITY_DIR", "/var/tmp/django-dataflow-reliability"))
HOST = "127.0.0.1"
PG_PORT = int(os.environ.get("DATAFLOW_RELIABILITY_PG_PORT", "5440"))
MARIADB_PORT = int(os.environ.get("DATAFLOW_RELIABILITY_MARIADB_PORT", "3340"))
PGBOUNCER_PORT = int(os.environ.get("DATAFLOW_RELIABILITY_PGBOUNCER_PORT", "6440"))
START_TIMEOUT = 60.0


class ServerError(RuntimeError):
    """A dedicated server could not be prepared or started; the message says why."""


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def as_user(user: str) -> list[str]:
    """The prefix that runs a command as ``user`` (nothing if we are not root)."""
    if os.geteuid() == 0 and _user_exists(user):
        return ["runuser", "-u", user, "--"]
    return []


def chown(path: Path, user: str) -> None:
    if os.geteuid() == 0 and _user_exists(user):
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def run_command(argv: list[str], what: str, timeout: float = START_TIMEOUT) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise ServerError(f"{what} failed ({result.returncode}): {result.stderr or result.stdout}")
    return result.stdout


def wait_for(check, what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ServerError(f"{what} did not become ready within {timeout:.0f}s")
        time.sleep(0.05)


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One ``up``/``down`` at a time on this machine (two test runs may start together)."""
    ROOT.mkdir(parents=True, exist_ok=True)
    ROOT.chmod(0o755)
    with open(ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
