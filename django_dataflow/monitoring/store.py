"""The snapshot directory: private, written atomically, pruned of dead processes.

Layout (one directory per project, see ``conf.stats_dir``)::

    proc-<pid>-<instance>.json   one per live process that uses a pool
    retired.json                 counters of processes that exited (kept monotonic)
    .lock                        serialises retirement (flock)

Why it is built this way:

* The directory is ``0700`` and owned by the app's user; anything else (a directory
  another user planted in /tmp, a symlink) is refused, never written through.
* A snapshot is written to a temporary file and renamed over the old one, so a reader
  sees the old or the new snapshot, never half of one.
* A process may die without cleaning up (SIGKILL, OOM). Readers prune a snapshot whose
  pid is gone, or was reused by another process (its start time differs). A process in
  another pid namespace (a sidecar container sharing the directory) cannot be checked
  by pid: its snapshot is pruned once it is not rewritten for ``conf.stale_after()``.
* Prometheus counters must never go down. When a process exits (or is pruned) its
  counters move into ``retired.json``, kept per process instance for a while, so the
  sum over live and exited processes stays monotonic and nothing is counted twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django_dataflow.stats import COUNTER_KEYS

try:
    import fcntl
except ImportError:  # not on Windows; retirement is then unserialised (best effort)
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("django_dataflow.monitoring")

FORMAT = 1
PREFIX = "proc-"
SUFFIX = ".json"
RETIRED = "retired.json"
# Exited instances kept apart (so one that turns out alive is not counted twice);
# older ones are folded into a single base.
RECENT_RETIRED = 200
# An instance pruned only because its snapshot went stale (another pid namespace: its
# exit cannot be checked) may be a paused container that publishes again. It is kept
# apart, never folded, until it has been silent this long.
UNCONFIRMED_KEPT_S = 24 * 3600.0


class StatsDirError(OSError):
    """The snapshot directory cannot be used safely."""


# -- the directory -------------------------------------------------------------------------


def _check_private(path: Path) -> None:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise StatsDirError(f"{path} is not a directory (a symlink or a file); refusing to use it.")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise StatsDirError(
            f"{path} belongs to uid {info.st_uid}, not to this process's uid {os.getuid()}; "
            "refusing to use it. Set DATAFLOW_STATS_DIR to a directory of the app's user."
        )
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def ensure_dir(path: Path, *, create: bool = True) -> Path:
    """Make sure ``path`` (and a ``django-dataflow-<uid>`` parent) is private to us.

    With ``create=False`` a missing directory raises FileNotFoundError.
    """
    parent = path.parent
    if parent.name.startswith("django-dataflow-"):
        # The default layout under the shared temp directory: guard the parent too.
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(parent, 0o700)
        _check_private(parent)
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(path)
    return path


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None if it is gone or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def snapshot_path(directory: Path, pid: int, instance: str) -> Path:
    return directory / f"{PREFIX}{pid}-{instance}{SUFFIX}"


# -- which process is this -------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, Linux), to detect a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def pid_namespace() -> str:
    """An id of this pid namespace; pids are comparable only within one."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return f"host:{socket.gethostname()}"


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def is_dead(snapshot: dict[str, Any], *, namespace: str, stale_after: float, now: float) -> bool:
    """Has the process that wrote ``snapshot`` exited?"""
    pid = snapshot.get("pid")
    if not isinstance(pid, int):
        return True
    if snapshot.get("namespace") == namespace:
        if not pid_running(pid):
            return True
        started = snapshot.get("started")
        return started is not None and process_start_time(pid) not in (None, started)
    return now - float(snapshot.get("published_at", 0)) > stale_after


# -- reading ---------------------------------------------------------------------------


def snapshot_files(directory: Path) -> Iterator[Path]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in sorted(names):
        if name.startswith(PREFIX) and name.endswith(SUFFIX):
            yield directory / name


def read_snapshots(
    directory: Path, *, stale_after: float, prune: bool = True
) -> list[dict[str, Any]]:
    """The snapshots of live processes, each with ``age`` (seconds since written) and
    ``stale`` added. With ``prune``, the snapshots of dead processes are retired."""
    namespace = pid_namespace()
    now = time.time()
    live, dead, stale = [], [], []
    for path in snapshot_files(directory):
        snapshot = read_json(path)
        if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
            continue
        if is_dead(snapshot, namespace=namespace, stale_after=stale_after, now=now):
            # Same namespace: its pid was checked. Otherwise it only went silent.
            confirmed = snapshot.get("namespace") == namespace
            (dead if confirmed else stale).append((path, snapshot))
            continue
        snapshot["age"] = max(0.0, now - float(snapshot.get("published_at", now)))
        snapshot["stale"] = snapshot["age"] > stale_after
        live.append(snapshot)
    if prune and (dead or stale):
        try:
            if dead:
                retire(directory, dead)
            if stale:
                retire(directory, stale, confirmed=False)
        except OSError as error:
            logger.warning(
                "Could not prune snapshots of exited processes in %s: %s", directory, error
            )
    return live


# -- counters of exited processes ------------------------------------------------------


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def counters_of(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per alias, the monotonic counters of one snapshot (what survives its process)."""
    result = {}
    for alias, pool in (snapshot.get("pools") or {}).items():
        counters: dict[str, Any] = {key: pool.get(key, 0) for key in COUNTER_KEYS}
        counters["wait_seconds"] = float(pool.get("wait_time_avg", 0.0)) * int(pool.get("waits", 0))
        counters["invalidated_by_reason"] = dict(pool.get("invalidated_by_reason") or {})
        result[alias] = counters
    return result


def add_counters(into: dict[str, dict[str, Any]], more: dict[str, dict[str, Any]]) -> None:
    for alias, counters in more.items():
        target = into.setdefault(alias, {"invalidated_by_reason": {}})
        for key, value in counters.items():
            if key == "invalidated_by_reason":
                reasons = target.setdefault(key, {})
                for reason, count in value.items():
                    reasons[reason] = reasons.get(reason, 0) + count
            else:
                target[key] = target.get(key, 0) + value


def _larger_counters(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per alias and key, the larger of two readings of one process's counters."""
    merged = {alias: dict(counters) for alias, counters in old.items()}
    for alias, counters in new.items():
        target = merged.setdefault(alias, {})
        for key, value in counters.items():
            if key == "invalidated_by_reason":
                reasons = dict(target.get(key) or {})
                for reason, count in value.items():
                    reasons[reason] = max(reasons.get(reason, 0), count)
                target[key] = reasons
            else:
                target[key] = max(target.get(key, 0), value)
    return merged


def read_retired(directory: Path) -> dict[str, Any]:
    retired = read_json(directory / RETIRED)
    if not isinstance(retired, dict) or retired.get("format") != FORMAT:
        retired = {"format": FORMAT, "base": {}, "recent": {}}
    # instance -> when it last published, for instances retired as stale only
    retired.setdefault("unconfirmed", {})
    return retired


def retire(
    directory: Path, dead: list[tuple[Path, dict[str, Any]]], *, confirmed: bool = True
) -> None:
    """Move the counters of exited processes into ``retired.json`` and delete their
    snapshots. Safe against concurrent pruners and against being run twice.

    ``confirmed=False``: the processes were only silent too long (another pid
    namespace); they may publish again, so they are never folded into the base while
    that is still plausible (see ``UNCONFIRMED_KEPT_S``)."""
    with _locked(directory):
        retired = read_retired(directory)
        recent: dict[str, Any] = retired["recent"]
        unconfirmed: dict[str, float] = retired["unconfirmed"]
        for _path, snapshot in dead:
            instance = str(snapshot.get("instance"))
            # Retired before (pruned as stale, then it published again): its counters
            # only ever grew, so the larger of each is its latest.
            recent[instance] = _larger_counters(recent.get(instance, {}), counters_of(snapshot))
            if confirmed:
                unconfirmed.pop(instance, None)
            else:
                unconfirmed[instance] = float(snapshot.get("published_at") or 0.0)
        _fold_oldest(retired, now=time.time())
        write_json(directory / RETIRED, retired)
        for path, _snapshot in dead:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _fold_oldest(retired: dict[str, Any], *, now: float) -> None:
    """Fold the oldest exited instances beyond ``RECENT_RETIRED`` into the base.

    Folded counters can no longer be told apart, so an instance that might still be
    alive (retired as stale, silent for less than ``UNCONFIRMED_KEPT_S``) is skipped:
    folded, and then publishing again, it would be counted twice."""
    recent: dict[str, Any] = retired["recent"]
    unconfirmed: dict[str, float] = retired["unconfirmed"]
    excess = len(recent) - RECENT_RETIRED
    if excess <= 0:
        return
    foldable = [
        instance
        for instance in recent  # oldest first: dicts keep insertion order
        if now - unconfirmed.get(instance, float("-inf")) > UNCONFIRMED_KEPT_S
    ]
    for instance in foldable[:excess]:
        add_counters(retired["base"], recent.pop(instance))
        unconfirmed.pop(instance, None)


def exited_counters(directory: Path, live_instances: set[str]) -> dict[str, dict[str, Any]]:
    """Per alias, the counters of processes that exited (not of ``live_instances``)."""
    retired = read_retired(directory)
    total: dict[str, dict[str, Any]] = {}
    add_counters(total, retired["base"])
    for instance, counters in retired["recent"].items():
        if instance not in live_instances:
            add_counters(total, counters)
    return total
