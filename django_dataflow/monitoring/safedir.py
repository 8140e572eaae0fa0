"""The snapshot directory, opened so that nobody else can redirect what is read or written.

The rules (docs/monitoring.md, "The snapshot directory"):

* The directory is opened once per operation, ``O_DIRECTORY | O_NOFOLLOW``, and checked
  on the open descriptor (``fstat``): a directory, ours, ``0700``. Every later open,
  rename and unlink is relative to that descriptor (``dir_fd``), so swapping the path
  for a symlink between the check and the use changes nothing.
* A directory with looser permissions is refused with the fix, as ssh does, never
  chmodded: it may be someone's ``/tmp``. Only a directory created here is made ``0700``.
* Every existing ancestor must belong to root or to us and be writable by nobody else
  (or be sticky, like ``/tmp``): another user who can rename a parent can swap the
  directory itself.
* Files are opened ``O_NOFOLLOW | O_NONBLOCK`` and must be regular files (a FIFO named
  like a snapshot would block a reader for ever); temporary files have random names and
  are created ``O_EXCL``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows; writers are then unserialised (best effort)
    fcntl = None  # type: ignore[assignment]

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIRECTORY = getattr(os, "O_DIRECTORY", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# A snapshot is a few kilobytes; anything far larger is not one of ours.
MAX_FILE_BYTES = 8 * 1024 * 1024
LOCK_WAIT_S = 2.0


class StatsDirError(OSError):
    """The snapshot directory cannot be used safely."""


class BadFile(ValueError):
    """A file in the directory is not what it should be (the message says why)."""


def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def check_ancestors(path: Path) -> None:
    """Refuse ``path`` if another user could rename or replace one of its parents."""
    uid = _uid()
    if uid is None:
        return
    real = Path(os.path.realpath(path.parent))
    for ancestor in (real, *real.parents):
        try:
            info = os.stat(ancestor)
        except FileNotFoundError:
            continue
        if info.st_uid not in (0, uid):
            raise StatsDirError(
                f"{ancestor}, a parent of the statistics directory {path}, belongs to uid "
                f"{info.st_uid}, who could replace the directory; refusing to use it. Set "
                "DATAFLOW_STATS_DIR to a directory whose parents are root's or the app "
                "user's."
            )
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise StatsDirError(
                f"{ancestor}, a parent of the statistics directory {path}, can be written "
                f"by other users (mode {stat.S_IMODE(info.st_mode):04o}, not sticky), who "
                "could replace the directory; refusing to use it. Run chmod go-w on it, "
                "or set DATAFLOW_STATS_DIR elsewhere."
            )


def _check_open(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    if not stat.S_ISDIR(info.st_mode):
        raise StatsDirError(f"{path} is not a directory; refusing to use it.")
    uid = _uid()
    if uid is not None and info.st_uid != uid:
        raise StatsDirError(
            f"{path} belongs to uid {info.st_uid}, not to this process's uid {uid}; "
            "refusing to use it. Set DATAFLOW_STATS_DIR to a directory of the app's user."
        )
    if uid is not None and info.st_mode & 0o077:
        raise StatsDirError(
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}: other users can read or "
            "change it; refusing to use it (as ssh refuses such a directory). Run "
            f"chmod 700 {path}, or set DATAFLOW_STATS_DIR to a directory of its own."
        )


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | DIRECTORY | NOFOLLOW | CLOEXEC)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise StatsDirError(
                f"{path} is not a directory (a symlink or a file); refusing to use it."
            ) from None
        raise


def _create(path: Path) -> None:
    """Create ``path`` and its missing parents, ``0700``: the only chmod ever done, on
    directories made here (the umask may have taken bits away)."""
    missing = []
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # made by another process meanwhile: checked when opened
        fd = _open(directory)
        try:
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)


def open_dir(path: Path, *, create: bool = False) -> int:
    """A descriptor of the checked directory (the caller closes it). A missing directory
    raises FileNotFoundError unless ``create``."""
    check_ancestors(path)
    if create:
        _create(path)
    fd = _open(path)
    try:
        _check_open(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def inspect(path: Path) -> None:
    """Raise StatsDirError if ``path`` would be refused; changes nothing (a missing
    directory is fine if its existing parents are)."""
    check_ancestors(path)
    with contextlib.suppress(FileNotFoundError):
        os.close(open_dir(path))


@contextlib.contextmanager
def opened(path: Path, *, create: bool = False) -> Iterator[int]:
    fd = open_dir(path, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def names(fd: int) -> list[str]:
    return sorted(os.listdir(fd))


def read_bytes(fd: int, name: str) -> bytes:
    """The content of the regular file ``name``; FileNotFoundError if it is gone, BadFile
    if it is something else (a FIFO, a device, a symlink, too large)."""
    try:
        file_fd = os.open(name, os.O_RDONLY | NOFOLLOW | NONBLOCK | CLOEXEC, dir_fd=fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise BadFile("it is a symlink") from None
        raise
    try:
        info = os.fstat(file_fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadFile("it is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise BadFile(f"it is {info.st_size} bytes long, more than {MAX_FILE_BYTES}")
        chunks, size = [], 0
        while chunk := os.read(file_fd, 1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise BadFile(f"it is more than {MAX_FILE_BYTES} bytes long")
        return b"".join(chunks)
    finally:
        os.close(file_fd)


def write_atomic(fd: int, name: str, data: bytes) -> None:
    """Replace ``name`` with ``data``: written to a new, randomly named file, then renamed."""
    tmp = f".tmp-{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC
    file_fd = os.open(tmp, flags, 0o600, dir_fd=fd)
    try:
        with os.fdopen(file_fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=fd)
        raise


def unlink(fd: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=fd)


@contextlib.contextmanager
def locked(fd: int, *, wait: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold ``.lock`` (writers only). Raises StatsDirError after ``wait`` seconds: a
    holder that is stopped (SIGSTOP) must not block anyone for ever."""
    lock_fd = os.open(".lock", os.O_RDWR | os.O_CREAT | NOFOLLOW | CLOEXEC, 0o600, dir_fd=fd)
    try:
        if fcntl is not None:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StatsDirError(
                            "the statistics directory's .lock is held by another process "
                            f"for more than {wait:g}s"
                        ) from None
                    time.sleep(0.05)
        yield
    finally:
        os.close(lock_fd)  # releases the lock
