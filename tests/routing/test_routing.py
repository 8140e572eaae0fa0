"""The router's decisions and the context managers that steer them, without a database.

Replica health is assumed good here (tests/routing/test_routing_health.py covers it), so
these tests pin down the rules: who wins when managers nest, what a write pins, and that
the state stays with its thread, its asyncio task and its request.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest
from django.core.signals import request_finished, request_started
from django.db import connections
from django.test import override_settings
from django.utils.connection import ConnectionDoesNotExist

from django_dataflow.routing import context as routing
from django_dataflow.routing.context import (
    routing_scope,
    use_analytics,
    use_database,
    use_primary,
    use_replica,
)
from django_dataflow.routing.health import health
from django_dataflow.routing.router import DataFlowRouter
from tests.routing.routingapp.models import Article, Comment, Event, PageView

router = DataFlowRouter()
REPLICAS = {"replica1", "replica2"}


@pytest.fixture(autouse=True)
def replicas_are_healthy(monkeypatch):
    monkeypatch.setattr(health, "usable", lambda alias, dbset: True)


def read(model=Article):
    return router.db_for_read(model)


def test_reads_go_to_a_replica_and_writes_to_the_primary():
    assert read() in REPLICAS
    assert router.db_for_write(Article) == "default"


def test_after_a_write_reads_of_that_set_go_to_its_primary():
    with routing_scope():
        router.db_for_write(Article)
        assert read(Article) == "default"
        assert read(Comment) == "default"
        assert read(Event) == "events_replica"  # another set: not pinned


def test_a_write_pins_only_its_own_scope():
    with routing_scope():
        with routing_scope():
            router.db_for_write(Article)
            assert read() == "default"
        assert read() in REPLICAS
    assert read() in REPLICAS


def test_outside_any_scope_a_write_pins_the_rest_of_the_context():
    router.db_for_write(Article)
    assert read() == "default"


def test_a_request_starts_and_ends_a_scope():
    router.db_for_write(Article)
    request_started.send(sender=None)
    assert read() in REPLICAS
    router.db_for_write(Article)
    assert read() == "default"
    request_finished.send(sender=None)
    assert routing.current_scope() is None
    assert read() in REPLICAS


def test_a_celery_task_starts_with_no_pinning():
    router.db_for_write(Article)  # outside any scope: pins the rest of the thread
    before = routing.current_scope()
    routing._task_prerun(task_id="1", task=None)
    assert read() in REPLICAS
    routing._task_postrun(task_id="1", task=None)
    assert routing.current_scope() is before  # the task's scope ended, not the thread's
    assert read() == "default"


@pytest.fixture
def eager_celery_app():
    """A real Celery app that runs tasks in the caller's thread (``task_always_eager``,
    as in tests and development), with Celery's real task signals."""
    celery = pytest.importorskip(
        "celery", reason="Celery is not installed: pip install -e '.[reliability]'"
    )
    app = celery.Celery("dataflow-routing-tests", set_as_current=False)
    app.conf.task_always_eager = True
    return app


def test_a_real_celery_task_starts_with_no_pinning(eager_celery_app):
    @eager_celery_app.task
    def reads_in_a_task():
        return read()

    router.db_for_write(Article)  # whatever ran before in this thread wrote
    assert reads_in_a_task.delay().get() in REPLICAS


def test_an_eager_celery_task_gives_the_calling_request_its_scope_back(eager_celery_app):
    """A task run inside a request (``delay()`` with ``task_always_eager``, or
    ``apply()``) has a scope of its own; the request keeps its pins and its writes."""

    @eager_celery_app.task
    def writes_in_a_task():
        router.db_for_write(Article)
        return read()

    request_started.send(sender=None)
    request_scope = routing.current_scope()
    router.db_for_write(Article)  # the view wrote: its reads go to the primary
    assert writes_in_a_task.delay().get() == "default"
    assert writes_in_a_task.apply().get() == "default"
    assert routing.current_scope() is request_scope
    assert read() == "default"  # read-your-writes still holds after the task
    request_finished.send(sender=None)
    assert routing.current_scope() is None


def test_the_writes_of_an_eager_task_pin_the_calling_request(eager_celery_app):
    @eager_celery_app.task
    def writes():
        router.db_for_write(Article)

    with routing_scope() as scope:  # the request
        assert read() in REPLICAS
        writes.delay()
        assert read() == "default"  # the task's write, made a moment ago, is visible
    assert scope.written == {"default"}  # and the middleware's cookie pins it


def test_writes_after_an_eager_task_reach_the_middlewares_scope(eager_celery_app):
    """ReadYourWritesMiddleware sets its cookie from the scope it opened: a write made
    after an eager task must land there, not in a scope of its own."""

    @eager_celery_app.task
    def noop():
        return None

    with routing_scope() as scope:  # what the middleware does around the view
        noop.delay()
        router.db_for_write(Article)
    assert scope.written == {"default"}


def test_decorating_a_generator_function_is_an_error_that_says_what_to_do():
    """Calling a generator function only creates the generator: a decorator would have
    steered nothing, silently (a streaming body is often a generator)."""
    with pytest.raises(TypeError, match=r"Use `with use_primary\(\):` inside the generator"):

        @use_primary
        def rows():
            yield read()

    with pytest.raises(TypeError, match=r"use_database\('analytics'\) cannot decorate"):

        @use_database("analytics")
        async def more_rows():
            yield read()

    def rows_under_the_manager():
        with use_primary():
            yield read()

    assert list(rows_under_the_manager()) == ["default"]


def test_reads_inside_atomic_on_the_primary_go_to_the_primary(monkeypatch):
    monkeypatch.setattr(connections["default"], "in_atomic_block", True)
    assert read() == "default"
    assert read(Event) == "events_replica"
    with use_replica():
        assert read() in REPLICAS


def test_use_primary_use_replica_and_use_analytics_nest_and_restore():
    with routing_scope(), use_primary():
        assert read() == "default"
        with use_replica():
            assert read() in REPLICAS
            with use_analytics():
                assert read() == "analytics"
                assert read(Event) == "events_replica"  # no analytics alias: as usual
                assert router.db_for_write(Article) == "default"
            assert read() in REPLICAS
        assert read() == "default"
    assert read() in REPLICAS  # the write's pin ended with its scope


def test_use_replica_wins_over_a_pin():
    with routing_scope():
        router.db_for_write(Article)
        with use_replica():
            assert read() in REPLICAS


def test_use_database_sends_reads_and_writes_of_every_model_there():
    with use_database("replica2"):
        assert read(Article) == "replica2"
        assert read(PageView) == "replica2"
        assert router.db_for_write(Event) == "replica2"
        with use_primary():
            assert read(Article) == "default"


def test_use_database_refuses_an_unknown_alias():
    with pytest.raises(ConnectionDoesNotExist):
        use_database("nope")


def test_analytics_models_live_on_the_analytics_database():
    assert read(PageView) == "analytics"
    assert router.db_for_write(PageView) == "analytics"
    with use_primary():
        assert read(PageView) == "analytics"
    with routing_scope():
        router.db_for_write(PageView)
        assert read(Article) in REPLICAS  # an analytics write pins nothing


def test_each_set_has_its_own_primary_and_replicas():
    assert read(Event) == "events_replica"
    assert router.db_for_write(Event) == "events"


def test_the_managers_are_decorators_of_sync_and_async_functions():
    @use_primary
    def bare():
        return read()

    @use_analytics()
    def called():
        return read()

    @use_primary()
    async def coroutine():
        await asyncio.sleep(0)
        return read()

    assert bare() == "default"
    assert called() == "analytics"
    assert asyncio.run(coroutine()) == "default"
    assert read() in REPLICAS


def test_one_decorated_function_runs_in_many_threads_at_once():
    barrier = threading.Barrier(8)
    results = []

    @use_primary
    def work():
        barrier.wait(timeout=5)
        results.append(read())
        barrier.wait(timeout=5)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["default"] * 8
    assert read() in REPLICAS


def test_an_override_in_one_thread_does_not_reach_another():
    inside, outside = threading.Event(), threading.Event()
    seen = {}

    def pinned():
        with use_primary():
            inside.set()
            outside.wait(timeout=5)
            seen["pinned"] = read()

    def free():
        inside.wait(timeout=5)
        seen["free"] = read()
        outside.set()

    threads = [threading.Thread(target=pinned), threading.Thread(target=free)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen["pinned"] == "default"
    assert seen["free"] in REPLICAS


def test_concurrent_asyncio_tasks_keep_their_own_overrides():
    async def task(manager, name, log):
        with manager:
            for _ in range(3):
                log.append((name, read()))
                await asyncio.sleep(0)  # let the other task run in between

    async def main():
        log = []
        await asyncio.gather(task(use_primary(), "p", log), task(use_replica(), "r", log))
        return log

    log = asyncio.run(main())
    names = [name for name, _ in log]
    assert names[:2] == ["p", "r"]  # interleaved
    assert {alias for name, alias in log if name == "p"} == {"default"}
    assert {alias for name, alias in log if name == "r"} <= REPLICAS


def test_a_write_in_a_task_pins_that_task_not_its_parent():
    async def child():
        router.db_for_write(Article)
        await asyncio.sleep(0)
        return read()

    async def main():
        in_child = await asyncio.create_task(child())
        return in_child, read()

    in_child, in_parent = asyncio.run(main())
    assert in_child == "default"
    assert in_parent in REPLICAS


def test_within_a_request_scope_one_replica_serves_every_read():
    for _ in range(20):
        with routing_scope():
            first = read()
            assert {read() for _ in range(10)} == {first}


def test_without_a_scope_each_read_draws_a_replica_by_weight():
    counts = Counter(read() for _ in range(4000))
    assert set(counts) == REPLICAS
    assert 0.70 < counts["replica1"] / 4000 < 0.80  # weights 3:1


def test_weight_zero_replicas_only_serve_when_the_others_cannot(monkeypatch):
    routing_setting = {"default": {"replicas": {"replica1": 1, "replica2": 0}}}
    with override_settings(DATAFLOW_ROUTING=routing_setting):
        assert {read() for _ in range(200)} == {"replica1"}
        monkeypatch.setattr(health, "usable", lambda alias, dbset: alias != "replica1")
        assert read() == "replica2"
        monkeypatch.setattr(health, "usable", lambda alias, dbset: False)
        assert read() == "default"


def test_without_the_setting_the_router_has_no_opinion():
    with override_settings(DATAFLOW_ROUTING=None):
        assert read() is None
        assert router.db_for_write(Article) is None
        assert router.allow_migrate("default", "routingapp", "article") is None
        with use_database("replica1"):
            assert read() == "replica1"


@pytest.mark.parametrize(
    ("db", "model_name", "allowed"),
    [
        ("default", "article", True),
        ("default", "pageview", False),
        ("default", "event", False),
        ("replica1", "article", False),
        ("events_replica", "event", False),
        ("analytics", "pageview", True),
        ("analytics", "article", False),
        ("events", "event", True),
        ("events", "article", False),
    ],
)
def test_tables_are_made_on_primaries_and_analytics_models_on_analytics(db, model_name, allowed):
    assert router.allow_migrate(db, "routingapp", model_name) is allowed


def test_migrations_of_other_apps_follow_the_default_set():
    assert router.allow_migrate("default", "auth", "user") is True
    assert router.allow_migrate("events", "auth", "user") is False
    assert router.allow_migrate("replica1", "auth") is False
    assert router.allow_migrate("elsewhere", "auth") is None


def test_relations_are_allowed_within_a_set_only():
    def on(db, model=Article):
        obj = model()
        obj._state.db = db
        return obj

    assert router.allow_relation(on("default"), on("replica1")) is True
    assert router.allow_relation(on("replica1"), on("replica2")) is True
    assert router.allow_relation(on("default"), on("events", Event)) is False
    assert router.allow_relation(on("default"), on("analytics", PageView)) is False
    assert router.allow_relation(on("analytics", PageView), on("analytics", PageView)) is True
    assert router.allow_relation(on("default"), on(None)) is None


def test_with_celery_installed_each_task_starts_a_fresh_scope(monkeypatch):
    import importlib.machinery
    import sys
    import types

    class FakeSignal:
        def __init__(self):
            self.receivers = []

        def connect(self, receiver, **kwargs):
            self.receivers.append(receiver)

    celery = types.ModuleType("celery")
    celery.__spec__ = importlib.machinery.ModuleSpec("celery", None)
    celery.signals = types.SimpleNamespace(task_prerun=FakeSignal(), task_postrun=FakeSignal())
    monkeypatch.setitem(sys.modules, "celery", celery)
    monkeypatch.setitem(sys.modules, "celery.signals", celery.signals)
    routing.connect_signals()
    (prerun,) = celery.signals.task_prerun.receivers
    (postrun,) = celery.signals.task_postrun.receivers

    prerun(task_id="1", task=None)
    router.db_for_write(Article)  # the previous task wrote
    postrun(task_id="1", task=None)
    assert routing.current_scope() is None
    prerun(task_id="2", task=None)
    assert read() in REPLICAS

    @use_primary  # the documented way to pin a task: under @app.task
    def pinned_task():
        return read()

    assert pinned_task() == "default"
    postrun(task_id="2", task=None)
    assert routing.current_scope() is None
