"""Hooks (signals) connected while a connection is parked, then the wrapper closed.

Closing a parked wrapper claims the connection before it sends ``pool_checkin``: the
hook never runs on a connection another thread has taken meanwhile, and hooks never see
a checkin without its checkout."""

from __future__ import annotations

import threading

import pytest

from django_dataflow.signals import pool_checkin, pool_checkout
from tests.backends.helpers import AT_REST, at_rest, backend_pid, make_wrapper, request

pytestmark = pytest.mark.django_db(transaction=True)

OPTIONS = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 3}


def test_a_checkin_hook_never_runs_on_a_connection_another_thread_holds():
    holder = make_wrapper(**OPTIONS)
    request(holder)  # parked for this thread
    pool = holder.dataflow_pool

    # Another thread, at the pool's limit, takes the parked connection and holds it.
    taken, finish, done = threading.Event(), threading.Event(), threading.Event()
    other_pid = []
    other_thread = []

    def other():
        wrapper = make_wrapper(**OPTIONS)
        other_thread.append(threading.current_thread())
        other_pid.append(backend_pid(wrapper))
        taken.set()
        finish.wait(10)
        wrapper.close()
        done.set()

    thread = threading.Thread(target=other, daemon=True)
    thread.start()
    assert taken.wait(10)

    seen = []

    def on_checkin(sender, connection, connection_record, **kwargs):
        seen.append(
            {
                "hook_thread": threading.current_thread(),
                "record_holder": connection_record.holder,
            }
        )

    pool_checkin.connect(on_checkin)
    try:
        holder.close()  # the main thread's wrapper: its connection was taken meanwhile
        finish.set()
        assert done.wait(10)
        thread.join(10)
    finally:
        pool_checkin.disconnect(on_checkin)

    # The main thread's close() must not run a checkin hook on the connection the
    # other thread holds (and is using) right now.
    from_main = [s for s in seen if s["hook_thread"] is threading.main_thread()]
    assert all(s["record_holder"] is not other_thread[0] for s in from_main), (
        "pool_checkin ran in the main thread on a connection checked out by another thread"
    )
    assert at_rest(pool) == AT_REST


def test_hooks_connected_while_parked_see_matching_checkouts_and_checkins():
    wrapper = make_wrapper(**OPTIONS)
    request(wrapper)  # parked, with no hooks connected: its checkout sent no signal
    events = []

    def on_checkout(sender, **kwargs):
        events.append("checkout")

    def on_checkin(sender, **kwargs):
        events.append("checkin")

    pool_checkout.connect(on_checkout)
    pool_checkin.connect(on_checkin)
    try:
        wrapper.close()  # gives the parked connection back
        request(wrapper)  # one full request with hooks on
        wrapper.close()
    finally:
        pool_checkout.disconnect(on_checkout)
        pool_checkin.disconnect(on_checkin)
    assert events == ["checkout", "checkin"]
    assert at_rest(wrapper.dataflow_pool) == AT_REST


def test_a_checkin_hook_connected_mid_request_is_not_sent_an_unpaired_checkin():
    """A receiver connected while a request holds its connection: that checkout sent no
    pool_checkout, so (as _dataflow_unpark does for a parked one) its return should not
    send a pool_checkin either; the guide's on_checkin reads info["checkout_time"]
    written by on_checkout."""
    wrapper = make_wrapper(**OPTIONS)
    wrapper.close_if_unusable_or_obsolete()  # request_started
    with wrapper.cursor() as cursor:  # checked out, no hooks connected
        cursor.execute("SELECT 1")
    events = []

    def on_checkout(sender, **kwargs):
        events.append("checkout")

    def on_checkin(sender, **kwargs):
        events.append("checkin")

    pool_checkout.connect(on_checkout)
    pool_checkin.connect(on_checkin)
    try:
        wrapper.close_if_unusable_or_obsolete()  # request_finished
    finally:
        pool_checkout.disconnect(on_checkout)
        pool_checkin.disconnect(on_checkin)
    assert events.count("checkin") == events.count("checkout")
    assert at_rest(wrapper.dataflow_pool) == AT_REST
