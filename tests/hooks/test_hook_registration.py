"""Hooks: registration by identity, a failing pool_timeout receiver, hooks connected
while a connection is parked."""

from __future__ import annotations

import functools

import pytest

from django_dataflow import (
    DataFlow,
    PoolTimeout,
    error_handler,
    on_checkin,
    on_checkout,
    on_connect,
)
from django_dataflow.signals import (
    pool_connect,
    pool_timeout,
)
from tests.backends.helpers import make_wrapper


def _send_connect(alias="default"):
    pool_connect.send(
        sender=object, alias=alias, vendor="sqlite", connection="conn", connection_record="rec"
    )


# -- distinct hooks sharing a __qualname__ all run -------------------------


def test_two_different_lambdas_registered_as_connect_hooks_both_run():
    ran = []
    on_connect(lambda connection, record: ran.append("search_path"))
    on_connect(lambda connection, record: ran.append("time_zone"))
    _send_connect()
    assert ran == ["search_path", "time_zone"]


def test_hooks_made_by_a_factory_all_run():
    ran = []

    def run_sql(sql):
        def hook(connection, record):
            ran.append(sql)

        return hook

    db = DataFlow()
    db.on_connect(run_sql("SET search_path TO app"))
    db.on_connect(run_sql("SET statement_timeout = 5000"))
    _send_connect()
    assert ran == ["SET search_path TO app", "SET statement_timeout = 5000"]


def test_registering_the_same_function_twice_runs_it_once():
    ran = []

    def hook(connection, record):
        ran.append(1)

    on_connect(hook)
    on_connect(hook)
    _send_connect()
    assert ran == [1]


# -- any callable can be a hook --------------------------------


def test_a_functools_partial_can_be_a_hook():
    ran = []

    def set_schema(schema, connection, record):
        ran.append(schema)

    on_connect(functools.partial(set_schema, "app"))
    _send_connect()
    assert ran == ["app"]


def test_a_callable_object_can_be_a_hook():
    class Hook:
        def __init__(self):
            self.calls = 0

        def __call__(self, connection, record):
            self.calls += 1

    hook = Hook()
    on_connect(hook)
    _send_connect()
    assert hook.calls == 1


# -- a raising pool_timeout receiver does not replace PoolTimeout -------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failing_pool_timeout_receiver_does_not_replace_pool_timeout():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 0.05}
    holder = make_wrapper(**options)
    holder.ensure_connection()
    try:

        def broken_metrics(sender, **kwargs):
            raise KeyError("metrics backend down")

        pool_timeout.connect(broken_metrics, weak=False)
        waiter = make_wrapper(**options)
        # Documented: PoolTimeout (an OperationalError) propagates.
        with pytest.raises(PoolTimeout):
            waiter.ensure_connection()
    finally:
        holder.close()


@pytest.mark.django_db(transaction=True)
def test_a_failing_pool_timeout_receiver_does_not_bypass_error_handlers():
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 0.05}
    holder = make_wrapper(**options)
    holder.ensure_connection()
    asked = []
    try:
        pool_timeout.connect(lambda sender, **kw: 1 / 0, weak=False)

        @error_handler
        def give_up(error, context):
            asked.append(context["retry_count"])
            return None

        waiter = make_wrapper(**options)
        with pytest.raises(PoolTimeout):
            waiter.ensure_connection()
        assert asked == [0]
    finally:
        holder.close()


# -- hooks connected while a connection is parked: a checkout and a checkin ------------


@pytest.mark.django_db(transaction=True)
def test_checkout_hook_runs_on_the_first_request_after_it_is_connected():
    wrapper = make_wrapper(pool_size=2, pool_max_overflow=0)
    # Request 1, no hooks yet: at its end the connection is parked (thread affinity).
    wrapper.ensure_connection()
    wrapper.close_if_unusable_or_obsolete()
    assert wrapper._dataflow_parked

    events = []
    on_checkout(lambda connection, record, proxy: events.append("checkout"))
    on_checkin(lambda connection, record: events.append("checkin"))

    # Request 2: docs/hooks.md — with receivers, every request really checks out and in.
    wrapper.ensure_connection()
    wrapper.close_if_unusable_or_obsolete()
    wrapper.close()
    assert events == ["checkout", "checkin"]


def test_a_bound_method_registered_twice_runs_once_and_two_objects_both_run():
    class Configure:
        def __init__(self, name):
            self.name = name

        def hook(self, connection, record):
            ran.append(self.name)

    ran = []
    first, second = Configure("first"), Configure("second")
    on_connect(first.hook)
    on_connect(first.hook)  # a new bound-method object, the same hook
    on_connect(second.hook)
    _send_connect()
    assert ran == ["first", "second"]
