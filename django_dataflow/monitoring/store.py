"""The snapshot directory: private, written atomically, pruned of dead processes.

Layout (one directory per project, see ``conf.stats_dir``)::

    proc-<pid>-<instance>.json   one per live process that uses a pool
    retired.json                 counters of processes that exited (kept monotonic)
    .lock                        serialises retirement (flock)

Why it is built this way:

* The directory is ``0700`` and owned by the app's user, its parents writable by no
  other user; anything else is refused, never chmodded or written through. Every file
  is opened relative to the checked directory (``safedir``).
* A snapshot is written to a temporary file and renamed over the old one, so a reader
  sees the old or the new snapshot, never half of one.
* A process may die without cleaning up (SIGKILL, OOM). A snapshot whose pid is gone,
  or was reused by another process (its start time differs), is left out by readers
  and retired by the next publisher: readers never write, delete or chmod. A process in
  another pid namespace (a sidecar container sharing the directory) cannot be checked
  by pid: its snapshot is left out and retired once it is not rewritten for ``conf.stale_after()``.
* A file that is not a valid snapshot is skipped with a warning (``shapes``).
* Prometheus counters must never go down. When a process exits (or is pruned) its
  counters move into ``retired.json``, kept per process instance for a while, so the
  sum over live and exited processes stays monotonic and nothing is counted twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django_dataflow.monitoring import safedir, shapes
from django_dataflow.monitoring.safedir import BadFile, StatsDirError
from django_dataflow.stats import COUNTER_KEYS

logger = logging.getLogger("django_dataflow.monitoring")

FORMAT = shapes.FORMAT
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

__all__ = ["BadFile", "StatsDirError"]


# -- the directory -------------------------------------------------------------------------


def ensure_dir(path: Path, *, create: bool = True) -> Path:
    """Check that ``path`` is safe to use (see ``safedir``), creating it (and missing
    parents, ``0700``) with ``create``. With ``create=False`` a missing directory raises
    FileNotFoundError. Nothing existing is ever chmodded."""
    with safedir.opened(path, create=create):
        return path


def remove(path: Path) -> None:
    """Delete the file ``path`` (a writer's own snapshot), if it and its directory are
    still there and safe."""
    with contextlib.suppress(OSError), safedir.opened(path.parent) as fd:
        safedir.unlink(fd, path.name)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only."""
    with safedir.opened(path.parent) as fd:
        safedir.write_atomic(fd, path.name, _dumps(data))


def _loads(fd: int, name: str) -> Any:
    """The JSON of ``name``: FileNotFoundError if gone, BadFile if it is not JSON."""
    try:
        return json.loads(safedir.read_bytes(fd, name))
    except (ValueError, RecursionError) as error:
        if isinstance(error, BadFile):
            raise
        raise BadFile(f"it is not JSON ({type(error).__name__})") from None


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None if it is gone or unreadable."""
    try:
        with safedir.opened(path.parent) as fd:
            return _loads(fd, path.name)
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
    except (OSError, OverflowError):
        return False
    return True


def is_dead(snapshot: dict[str, Any], *, namespace: str, stale_after: float, now: float) -> bool:
    """Has the process that wrote ``snapshot`` (a valid one) exited?"""
    pid = snapshot["pid"]
    if snapshot.get("namespace") == namespace:
        if not pid_running(pid):
            return True
        started = snapshot.get("started")
        return started is not None and process_start_time(pid) not in (None, started)
    return now - float(snapshot["published_at"]) > stale_after


# -- reading ---------------------------------------------------------------------------


@dataclasses.dataclass
class Scan:
    """What a directory holds: snapshots of live processes (with ``age`` and ``stale``
    added), of exited ones (``dead``: pid checked; ``silent``: another pid namespace,
    not rewritten for too long), and the files skipped, each with why."""

    live: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    dead: list[tuple[Path, dict[str, Any]]] = dataclasses.field(default_factory=list)
    silent: list[tuple[Path, dict[str, Any]]] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)


def _skip(scan: Scan, directory: Path, name: str, why: str) -> None:
    message = f"{directory / name} is skipped: {why}"
    logger.warning("Pool statistics: %s", message)
    scan.skipped.append(message)


def scan(directory: Path, *, stale_after: float) -> Scan:
    """Read every snapshot of ``directory`` without changing anything. A file that is
    not a valid snapshot is skipped with a warning naming it; the rest are read."""
    result = Scan()
    namespace = pid_namespace()
    now = time.time()
    with safedir.opened(directory) as fd:
        for name in safedir.names(fd):
            if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
                continue
            try:
                snapshot = _loads(fd, name)
            except FileNotFoundError:
                continue  # its process exited meanwhile
            except (OSError, BadFile) as error:
                _skip(result, directory, name, str(error))
                continue
            problem = shapes.snapshot_problem(snapshot)
            if problem:
                _skip(result, directory, name, problem)
                continue
            path = directory / name
            if is_dead(snapshot, namespace=namespace, stale_after=stale_after, now=now):
                # Same namespace: its pid was checked. Otherwise it only went silent.
                confirmed = snapshot.get("namespace") == namespace
                (result.dead if confirmed else result.silent).append((path, snapshot))
                continue
            snapshot["age"] = max(0.0, now - float(snapshot["published_at"]))
            snapshot["stale"] = snapshot["age"] > stale_after
            result.live.append(snapshot)
    return result


def snapshot_files(directory: Path) -> Iterator[Path]:
    try:
        with safedir.opened(directory) as fd:
            found = safedir.names(fd)
    except FileNotFoundError:
        return
    for name in found:
        if name.startswith(PREFIX) and name.endswith(SUFFIX):
            yield directory / name


def read_snapshots(
    directory: Path, *, stale_after: float, prune: bool = False
) -> list[dict[str, Any]]:
    """The snapshots of live processes, each with ``age`` (seconds since written) and
    ``stale`` added. With ``prune`` (writers only: the publisher), the snapshots of
    exited processes are retired."""
    found = scan(directory, stale_after=stale_after)
    if prune:
        retire_scanned(directory, found)
    return found.live


def retire_scanned(directory: Path, found: Scan) -> None:
    """Retire the exited processes of a ``scan`` (the publisher's tidying up)."""
    try:
        if found.dead:
            retire(directory, found.dead)
        if found.silent:
            retire(directory, found.silent, confirmed=False)
    except OSError as error:
        logger.warning("Could not prune snapshots of exited processes in %s: %s", directory, error)


# -- counters of exited processes ------------------------------------------------------


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


def _read_retired(fd: int, directory: Path) -> dict[str, Any]:
    try:
        data = _loads(fd, RETIRED)
    except FileNotFoundError:
        data = None
    except (OSError, BadFile) as error:
        logger.warning("Pool statistics: %s is skipped: %s", directory / RETIRED, error)
        data = None
    return shapes.clean_retired(data, directory / RETIRED)


def read_retired(directory: Path) -> dict[str, Any]:
    with safedir.opened(directory) as fd:
        return _read_retired(fd, directory)


def retire(
    directory: Path, dead: list[tuple[Path, dict[str, Any]]], *, confirmed: bool = True
) -> None:
    """Move the counters of exited processes into ``retired.json`` and delete their
    snapshots. Safe against concurrent pruners and against being run twice. Writers
    only (the publisher, a process at exit): readers never change the directory.

    ``confirmed=False``: the processes were only silent too long (another pid
    namespace); they may publish again, so they are never folded into the base while
    that is still plausible (see ``UNCONFIRMED_KEPT_S``)."""
    with safedir.opened(directory) as fd, safedir.locked(fd):
        retired = _read_retired(fd, directory)
        _merge_retired(retired, dead, confirmed=confirmed)
        _fold_oldest(retired, now=time.time())
        safedir.write_atomic(fd, RETIRED, _dumps(retired))
        for path, _snapshot in dead:
            safedir.unlink(fd, path.name)


def _merge_retired(
    retired: dict[str, Any], dead: list[tuple[Path, dict[str, Any]]], *, confirmed: bool
) -> None:
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


def exited_counters(
    directory: Path,
    live_instances: set[str],
    unretired: Iterable[tuple[Path, dict[str, Any]]] = (),
) -> dict[str, dict[str, Any]]:
    """Per alias, the counters of processes that exited (not of ``live_instances``),
    with the ``unretired`` snapshots of exited processes no writer has retired yet (a
    reader counts them where they are, without moving them)."""
    retired = read_retired(directory)
    _merge_retired(retired, list(unretired), confirmed=True)
    total: dict[str, dict[str, Any]] = {}
    add_counters(total, retired["base"])
    for instance, counters in retired["recent"].items():
        if instance not in live_instances:
            add_counters(total, counters)
    return total
