"""Hooks connected and disconnected while other threads run requests."""

from __future__ import annotations

import threading
import time

import pytest

from django_dataflow.signals import pool_checkin, pool_checkout
from tests.backends.helpers import AT_REST, at_rest, make_wrapper, request

pytestmark = pytest.mark.django_db(transaction=True)

OPTIONS = {"pool_size": 2, "pool_max_overflow": 0, "pool_timeout": 10}


def test_hooks_toggled_mid_run_only_ever_see_the_calling_threads_own_connection():
    problems = []
    lock = threading.Lock()

    def on_checkout(sender, connection_record, **kwargs):
        if connection_record.holder not in (threading.current_thread(), None):
            with lock:
                problems.append(("checkout", connection_record.holder))

    def on_checkin(sender, connection_record, **kwargs):
        if connection_record.holder not in (threading.current_thread(), None):
            with lock:
                problems.append(("checkin", connection_record.holder))

    stop = time.monotonic() + 1.5
    errors = []

    def worker(i):
        wrapper = make_wrapper(**OPTIONS)
        try:
            n = 0
            while time.monotonic() < stop:
                request(wrapper)
                n += 1
                if n % 2 == i % 2:
                    wrapper.close()  # e.g. connections.close_all() at a task's end
        except Exception as error:
            errors.append(repr(error))
        finally:
            wrapper.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    try:
        while time.monotonic() < stop:
            pool_checkout.connect(on_checkout)
            pool_checkin.connect(on_checkin)
            time.sleep(0.003)
            pool_checkout.disconnect(on_checkout)
            pool_checkin.disconnect(on_checkin)
            time.sleep(0.003)
    finally:
        pool_checkout.disconnect(on_checkout)
        pool_checkin.disconnect(on_checkin)
        for thread in threads:
            thread.join(30)
    probe = make_wrapper(**OPTIONS)
    probe.ensure_connection()
    pool = probe.dataflow_pool
    probe.close()
    assert errors == []
    assert problems == [], f"{len(problems)} hooks ran on another thread's connection"
    assert at_rest(pool) == AT_REST
