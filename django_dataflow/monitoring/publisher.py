"""Publishes this process's pool statistics for ``manage.py pool_stats`` and friends.

One daemon thread per process looks at the process's pools every
``DATAFLOW_STATS_INTERVAL`` seconds and rewrites its snapshot file when something
changed (and at least every heartbeat, so readers can tell a live process from a stuck
one). A thread rather than a hook on the request path: a worker whose requests are all
stuck waiting for a connection is exactly the one that must still report.

Cost on the request path: ``ensure_started()`` (connected to ``request_started`` and to
``pool_connect``) is one attribute comparison once the thread runs.

Fork safety: a forked child inherits neither the thread nor the file. The at-fork hook
gives the child a fresh identity; its first request or connection starts its own thread.
At exit the process moves its counters into the directory's ``retired.json`` and removes
its snapshot; a process that dies without exiting is pruned by readers (see ``store``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import sys
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import request_started

from django_dataflow import conf
from django_dataflow.backends.server import wrapper_queries
from django_dataflow.monitoring import store
from django_dataflow.pool import registry
from django_dataflow.settings.engines import pooled_vendor
from django_dataflow.signals import pool_connect
from django_dataflow.stats import combine, from_engine

logger = logging.getLogger("django_dataflow.monitoring")

# Key in ConnectionRecord.info: the server's id of the session (PostgreSQL backend pid,
# MySQL connection id), so ``--server`` can tell which server session is whose.
SERVER_SESSION = "dataflow.server_session"
# How far back "recent" goes for the health check's wait-time threshold.
RECENT_WINDOW = 60.0


class _Recent:
    """What happened in the last RECENT_WINDOW seconds, as far as the pool's cumulative
    figures tell.

    * ``recent_wait_time_max``: the longest checkout wait: a new lifetime maximum, the
      mean of the waits since the previous look (at least one wait was that long), and
      the oldest waiter now;
    * ``recent_timeouts``, ``recent_connection_errors``: how many, in the window (what
      stops service, for the health checks);
    * ``connect_waits`` (a counter): waits that ended with a connection opened for the
      waiter rather than one given back, when the engine does not count them itself:
      between two looks, at most as many as connections were opened.
    """

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float, int, int]] = deque()
        self.lifetime_max = 0.0
        self.waits = 0
        self.wait_seconds = 0.0
        self.timeouts = 0
        self.errors = 0
        self.created = 0
        self.connect_waits = 0

    def update(self, stats: dict[str, Any], now: float) -> dict[str, Any]:
        waits = int(stats.get("waits", 0))
        wait_seconds = float(stats.get("wait_time_avg", 0.0)) * waits
        seen = float(stats.get("maxwait", 0.0))
        if stats.get("wait_time_max", 0.0) > self.lifetime_max:
            self.lifetime_max = float(stats["wait_time_max"])
            seen = max(seen, self.lifetime_max)
        if waits > self.waits:
            seen = max(seen, (wait_seconds - self.wait_seconds) / (waits - self.waits))
        created = int(stats.get("connections_created", 0))
        self.connect_waits += max(0, min(waits - self.waits, created - self.created))
        timeouts = int(stats.get("timeouts", 0))
        errors = int(stats.get("connection_errors", 0))
        new_timeouts, new_errors = max(0, timeouts - self.timeouts), max(0, errors - self.errors)
        self.waits, self.wait_seconds, self.created = waits, wait_seconds, created
        self.timeouts, self.errors = timeouts, errors
        if seen > 0 or new_timeouts or new_errors:
            self.samples.append((now, seen, new_timeouts, new_errors))
        while self.samples and now - self.samples[0][0] > RECENT_WINDOW:
            self.samples.popleft()
        return {
            "recent_wait_time_max": max((sample[1] for sample in self.samples), default=0.0),
            "recent_timeouts": sum(sample[2] for sample in self.samples),
            "recent_connection_errors": sum(sample[3] for sample in self.samples),
            "connect_waits": int(stats.get("connect_waits", self.connect_waits)),
        }


class Publisher:
    """The per-process publisher. Use the module-level ``publisher``."""

    def __init__(self) -> None:
        self._new_identity()

    def _new_identity(self) -> None:
        self.pid = os.getpid()
        self.instance = secrets.token_hex(6)
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.running = False
        self.stopped = False
        self.path: Path | None = None
        self.last_body: Any = None
        self.last_write = 0.0
        self.recent: dict[str, _Recent] = defaultdict(_Recent)
        self.last_prune = 0.0
        # build() runs in the publishing thread and in request threads (the views).
        self.recent_lock = threading.Lock()
        self.warned = False
        self.started = store.process_start_time(self.pid)
        self.namespace = store.pid_namespace()

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start the publishing thread (once per process; a no-op if disabled)."""
        with self.lock:
            if self.thread is not None or self.stopped:
                return
            # Read first: a bad value raises each time, not once and then never again.
            enabled = conf.publish_enabled()
            self.thread = threading.Thread(
                target=self._run, name="django-dataflow-stats-publisher", daemon=True
            )
            if not enabled:
                return  # self.thread stays set (never started): the check stays cheap
            self.running = True
            self.thread.start()

    def stop(self) -> None:
        """Stop publishing and retire this process's snapshot (at exit, in tests)."""
        with self.lock:
            started = self.running
            self.stopped = True
            self.running = False
            self.wake.set()
            path, self.path = self.path, None
        if self.pid != os.getpid():
            return
        if path is None:
            # Nothing published yet: the first publish (at the first request) comes
            # before the first query. A worker recycled within its first interval
            # would take its counters with it.
            if started:
                self._retire_unpublished()
            return
        snapshot = store.read_json(path)
        with contextlib.suppress(Exception):
            fresh = self.build()
            if fresh["pools"]:
                snapshot = fresh
        if isinstance(snapshot, dict):
            try:
                store.retire(path.parent, [(path, snapshot)])
                return
            except OSError:
                pass
        store.remove(path)

    def _retire_unpublished(self) -> None:
        try:
            snapshot = self.build()
            if not snapshot["pools"]:
                return
            directory = store.ensure_dir(conf.stats_dir())
            snapshot["published_at"] = time.time()
            path = store.snapshot_path(directory, self.pid, self.instance)
            store.retire(directory, [(path, snapshot)])  # (no file to delete)
        except Exception:
            logger.debug("Could not retire the statistics of this process.", exc_info=True)

    def after_fork_in_child(self) -> None:
        self._new_identity()

    def _run(self) -> None:
        interval = conf.publish_interval()
        while self.running:
            try:
                self.publish()
            except Exception:
                if not self.warned:
                    self.warned = True
                    logger.exception("Publishing pool statistics failed.")
            self.wake.wait(interval)
            self.wake.clear()

    # -- publishing ------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        """This process's snapshot: the statistics of its pools, per alias."""
        by_alias: dict[str, list[Any]] = defaultdict(list)
        for pool in registry.all_pools():
            by_alias[pool.name].append(pool)
        now = time.monotonic()
        pools = {}
        for alias, alias_pools in sorted(by_alias.items()):
            stats = combine(from_engine(pool.get_stats()) for pool in alias_pools)
            with self.recent_lock:
                stats.update(self.recent[alias].update(stats, now))
            entry = settings.DATABASES.get(alias, {})
            stats["vendor"] = pooled_vendor(entry.get("ENGINE", "")) or ""
            stats["database"] = str(alias_pools[-1].target)
            stats["sessions"] = [
                [
                    record.info.get(SERVER_SESSION),
                    record.checked_out,
                    record.info.get("application_name"),
                ]
                for pool in alias_pools
                for record in pool.records()
                if record.info.get(SERVER_SESSION) is not None
            ]
            pools[alias] = stats
        return {
            "format": store.FORMAT,
            "pid": self.pid,
            "instance": self.instance,
            "started": self.started,
            "namespace": self.namespace,
            "program": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "",
            "interval": conf.publish_interval(),
            "pools": pools,
        }

    def publish(self, *, force: bool = False) -> Path | None:
        """Write this process's snapshot if it changed (or ``force``); return its path."""
        if not conf.publish_enabled():
            return None
        snapshot = self.build()
        with self.lock:
            if self.stopped or self.pid != os.getpid():
                return None
            try:
                directory = store.ensure_dir(conf.stats_dir())
            except OSError as error:
                if not self.warned:
                    self.warned = True
                    logger.warning("Pool statistics are not published: %s", error)
                return None
            path = store.snapshot_path(directory, self.pid, self.instance)
            if self.path is not None and self.path != path:
                store.remove(self.path)  # the directory setting changed
                self.path = None
            if not snapshot["pools"]:
                if self.path is not None:
                    store.remove(self.path)
                    self.path = None
                return None
            now = time.monotonic()
            body = snapshot["pools"]
            first = self.path is None
            if (
                not force
                and not first
                and body == self.last_body
                and now - self.last_write < conf.heartbeat_interval()
            ):
                return path
            snapshot["published_at"] = time.time()  # wall clock: compared across processes
            store.write_json(path, snapshot)
            self.path, self.last_body, self.last_write = path, body, now
        if first or now - self.last_prune >= conf.heartbeat_interval():
            # Tidy up after processes that died without cleaning up: the publishers do
            # it, never a reader (a view, the command) and never on the request path.
            self.last_prune = now
            try:
                store.retire_scanned(
                    directory, store.scan(directory, stale_after=conf.stale_after())
                )
            except OSError as error:
                logger.debug("Could not prune the statistics directory: %s", error)
        return path


publisher = Publisher()


def ensure_started(*args: Any, **kwargs: Any) -> None:
    """Start this process's publisher if it has none. Cheap: a signal receiver."""
    if publisher.thread is None:
        publisher.start()


def publish_now() -> Path | None:
    """Write this process's snapshot now, e.g. before a short-lived process exits or in
    tests. Returns the snapshot's path (None when there is nothing to publish)."""
    ensure_started()
    return publisher.publish(force=True)


def _remember_server_session(sender: Any, vendor: str, connection: Any, **kwargs: Any) -> None:
    """``pool_connect`` receiver: note the server's id of a new physical connection.

    Read here, in the thread that opened the connection: mysqlclient refuses (and may
    make the owner fail) when another thread touches a connection in use.
    """
    ensure_started()
    record = kwargs.get("connection_record")
    raw = getattr(connection, "dbapi_connection", connection)
    try:
        session = wrapper_queries(sender).session_id(raw)
    except Exception:  # monitoring must never break a connection
        logger.debug("Could not read the server session id.", exc_info=True)
        return
    if session is not None and record is not None:
        record.info[SERVER_SESSION] = session


_installed = False


def install() -> None:
    """Connect the publisher to Django, and to the process's exit and forks
    (idempotent). Called from AppConfig.ready()."""
    global _installed
    request_started.connect(ensure_started, dispatch_uid="django_dataflow.monitoring.publisher")
    pool_connect.connect(
        _remember_server_session, dispatch_uid="django_dataflow.monitoring.server_session"
    )
    if _installed:
        return
    _installed = True
    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=publisher.after_fork_in_child)


def _at_exit() -> None:
    if publisher.pid == os.getpid():
        publisher.stop()
