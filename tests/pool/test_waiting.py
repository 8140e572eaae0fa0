"""A waiter's wake-up: woken once by whoever sets its grant, it sleeps until then or
until its timeout, and once woken every later sleep returns at once (as an Event)."""

from __future__ import annotations

import threading
import time

from django_dataflow.pool.waiting import Waiter


def new_waiter() -> Waiter:
    return Waiter(threading.current_thread(), time.monotonic())


def test_a_waiter_nobody_wakes_sleeps_until_its_timeout():
    waiter = new_waiter()
    started = time.monotonic()
    assert waiter.sleep(0.1) is False
    assert 0.09 <= time.monotonic() - started < 2
    assert waiter.sleep(0) is False


def test_a_waiter_woken_before_it_sleeps_does_not_sleep_and_stays_woken():
    waiter = new_waiter()
    waiter.wake()
    started = time.monotonic()
    assert waiter.sleep(10) is True
    assert waiter.sleep(10) is True  # a second sleep (after an overflow delay) too
    assert time.monotonic() - started < 1


def test_a_sleeping_waiter_is_woken_from_another_thread():
    waiter = new_waiter()
    woken = []
    sleeper = threading.Thread(target=lambda: woken.append(waiter.sleep(10)))
    sleeper.start()
    time.sleep(0.05)
    started = time.monotonic()
    waiter.wake()
    sleeper.join(5)
    assert woken == [True]
    assert time.monotonic() - started < 1
