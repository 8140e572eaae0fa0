"""Randomized stress of the Django glue with real threads and a real database.

Threads run requests through their own wrappers (parking and taking back), close them,
drop them for the garbage collector (the finalizer), end holding a connection (parked or
checked out), leave autocommit off or an error at request end, while a housekeeper
thread maintains the pools all the time. Invariants: a session is never used by two
threads at once, and at rest the counters add up.
"""

from __future__ import annotations

import contextlib
import gc
import random
import threading
import time

import pytest

from django_dataflow.pool import registry
from tests.backends.helpers import AT_REST, at_rest, make_wrapper

pytestmark = pytest.mark.django_db(transaction=True)

OPTIONS = {"pool_size": 3, "pool_max_overflow": 1, "pool_timeout": 10, "pool_pre_ping": True}
PID_SQL = {
    "postgresql": "SELECT pg_backend_pid()",
    "mysql": "SELECT CONNECTION_ID()",
}


class Tracker:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_use: dict = {}
        self.violations: list = []
        self.errors: list = []

    def enter(self, key) -> None:
        me = threading.get_ident()
        with self.lock:
            other = self.in_use.get(key)
            if other is not None and other != me:
                self.violations.append((key, other, me))
            self.in_use[key] = me

    def leave(self, key) -> None:
        with self.lock:
            if self.in_use.get(key) == threading.get_ident():
                del self.in_use[key]


def session_key(wrapper):
    if wrapper.vendor == "sqlite":
        return id(wrapper.connection)
    with wrapper.cursor() as cursor:
        cursor.execute(PID_SQL[wrapper.vendor])
        return cursor.fetchone()[0]


def use(wrapper, tracker: Tracker, rng: random.Random) -> None:
    wrapper.ensure_connection()
    raw = wrapper.connection
    key = session_key(wrapper)
    tracker.enter(key)
    try:
        with wrapper.cursor() as cursor:
            for _ in range(rng.randint(1, 3)):
                cursor.execute("SELECT 1")
                cursor.fetchone()
                time.sleep(rng.random() * 0.002)
        if wrapper.vendor != "sqlite":
            assert session_key(wrapper) == key
        assert wrapper.connection is raw
    finally:
        tracker.leave(key)


def one_request(wrapper, tracker, rng) -> None:
    wrapper.close_if_unusable_or_obsolete()
    try:
        kind = rng.random()
        if kind < 0.1:
            try:
                with wrapper.cursor() as cursor:
                    cursor.execute("SELECT * FROM no_such_table_in_these_tests")
            except Exception:
                pass
        elif kind < 0.2:
            wrapper.set_autocommit(False)
            use(wrapper, tracker, rng)
        else:
            use(wrapper, tracker, rng)
    finally:
        wrapper.close_if_unusable_or_obsolete()


def worker(seed: int, tracker: Tracker, stop: float, keep: list) -> None:
    rng = random.Random(seed)
    wrapper = make_wrapper(**OPTIONS)
    try:
        while time.monotonic() < stop:
            action = rng.random()
            if action < 0.6:
                one_request(wrapper, tracker, rng)
            elif action < 0.7:
                wrapper.close()
            elif action < 0.8:
                # Dropped (parked or holding): the finalizer returns it.
                if rng.random() < 0.5:
                    wrapper.ensure_connection()
                wrapper = make_wrapper(**OPTIONS)
                gc.collect()  # Django's wrappers are cyclic: only gc runs the finalizer
            elif action < 0.9:
                # A short-lived thread that ends holding (or having parked) its
                # connection; its wrapper is kept alive or dropped at random.
                def short():
                    inner = make_wrapper(**OPTIONS)
                    if rng.random() < 0.5:
                        one_request(inner, tracker, random.Random(rng.random()))
                    else:
                        use(inner, tracker, random.Random(rng.random()))
                    if rng.random() < 0.5:
                        keep.append(inner)

                thread = threading.Thread(target=short)
                thread.start()
                thread.join(30)
                gc.collect()
            else:
                time.sleep(rng.random() * 0.003)
        wrapper.close()
    except Exception as error:  # reported by the test
        tracker.errors.append(repr(error))
        with contextlib.suppress(Exception):
            wrapper.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_glue_chaos(seed):
    tracker = Tracker()
    keep: list = []
    stop = time.monotonic() + 2.0
    done = threading.Event()

    def housekeeper():
        while not done.is_set():
            registry.run_housekeeping()
            time.sleep(0.002)

    keeper = threading.Thread(target=housekeeper, daemon=True)
    keeper.start()
    threads = [
        threading.Thread(target=worker, args=(seed * 100 + i, tracker, stop, keep))
        for i in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    keeper.join(10)
    assert not any(thread.is_alive() for thread in threads)
    pool = make_wrapper(**OPTIONS)
    pool.ensure_connection()
    the_pool = pool.dataflow_pool
    pool.close()
    keep.clear()  # wrappers of ended threads (not closable here): the finalizer returns them
    gc.collect()
    registry.run_housekeeping()
    registry.run_housekeeping()
    assert tracker.violations == []
    assert tracker.errors == []
    stats = the_pool.get_stats()
    assert at_rest(the_pool) == AT_REST, stats
    assert stats["total"] <= OPTIONS["pool_size"] + OPTIONS["pool_max_overflow"]
