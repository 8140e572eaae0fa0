"""No checkout is stranded: a direct get_new_connection() on a wrapper that holds a
connection, an asynchronous exception anywhere between the lend and the lease (or in
the middle of a return), and a connection held by a thread-pool thread, which the leak
report names as such."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import pytest
from asgiref.sync import sync_to_async

from django_dataflow.backends import base as backends_base
from tests.backends.helpers import AT_REST, at_rest, make_wrapper, request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("parked", [False, True])
def test_a_direct_get_new_connection_leaves_the_wrappers_lease_alone(parked):
    wrapper = make_wrapper(pool_size=2, pool_max_overflow=0)
    request(wrapper)
    if not parked:
        wrapper.ensure_connection()
    pool = wrapper.dataflow_pool
    raw = wrapper.get_new_connection(wrapper.get_connection_params())
    assert raw is not wrapper.__dict__.get("connection")
    raw.close()  # the caller's own connection, closed by the caller
    request(wrapper)  # the wrapper still works with its own
    wrapper.close()
    assert at_rest(pool) == AT_REST
    assert pool.get_stats()["total"] <= 1


class Interrupt(BaseException):
    """Stands for an asynchronous exception (KeyboardInterrupt, a gevent Timeout)."""


INTERRUPTIBLE = {
    function.__code__
    for function in (
        backends_base.PooledDatabaseWrapperMixin.connect,
        backends_base.PooledDatabaseWrapperMixin._dataflow_checkout,
        backends_base.PooledDatabaseWrapperMixin._dataflow_release,
        backends_base.PooledDatabaseWrapperMixin.close,
        backends_base.PooledDatabaseWrapperMixin._close,
    )
}


def interrupt_at(line_event: int):
    """A trace function that raises Interrupt at the ``line_event``-th line executed in
    the glue's connect and close paths: an asynchronous exception landing there."""
    seen = [0]

    def trace(frame, event, arg):
        if frame.f_code not in INTERRUPTIBLE:
            return None

        def local(frame, event, arg):
            if event == "line":
                seen[0] += 1
                if seen[0] == line_event:
                    raise Interrupt
            return local

        return local(frame, event, arg)

    return trace


def test_an_asynchronous_exception_anywhere_in_connect_or_close_strands_nothing():
    wrapper = make_wrapper(pool_size=1, pool_max_overflow=0, pool_timeout=2)
    request(wrapper)
    pool = wrapper.dataflow_pool
    wrapper.close()
    interrupted = 0
    for line_event in range(1, 200):
        sys.settrace(interrupt_at(line_event))
        try:
            wrapper.ensure_connection()
            wrapper.close()
        except Interrupt:
            interrupted += 1
        finally:
            sys.settrace(None)
        # What a request's end does: Django closes the wrapper.
        wrapper.close()
        assert at_rest(pool) == AT_REST, f"stranded at line event {line_event}"
        request(wrapper)  # and the pool still lends its one connection
        wrapper.close()
    assert interrupted > 20  # the trace did reach the glue


def test_a_leak_on_a_thread_pool_thread_is_reported_with_its_cause(caplog):
    """sync_to_async(thread_sensitive=False) runs on the event loop's shared executor:
    no request ends in its threads, so a connection opened there stays checked out."""
    wrappers = []

    def query():
        # (The thread's own wrapper, as django.db.connection is in a thread.)
        wrapper = make_wrapper(pool_size=2, pool_max_overflow=0, pool_leak_threshold=0.05)
        wrappers.append(wrapper)
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")  # and never closed

    def reported() -> bool:
        return any("thread_sensitive=False" in record.getMessage() for record in caplog.records)

    async def main():
        await sync_to_async(query, thread_sensitive=False)()
        with caplog.at_level(logging.WARNING, logger="django_dataflow.pool"):
            # The housekeeper's rounds (the process's housekeeper thread may run one
            # too, and a round looks for leaks at most every pool_leak_check_interval).
            deadline = time.monotonic() + 5.0
            while not reported() and time.monotonic() < deadline:
                time.sleep(0.05)
                wrappers[0].dataflow_pool.maintain()

    asyncio.run(main())
    messages = [record.getMessage() for record in caplog.records]
    assert reported(), messages
    wrappers[0].dataflow_pool.close()
