"""The router against a real primary and its streaming hot standby.

``pg_is_in_recovery()`` tells which server answered: true on the standby. The tests are
transactional (``transaction=True``): inside Django's per-test transaction every read
would go to the primary, as reads inside ``atomic()`` on the primary must.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, transaction

from django_dataflow.routing.context import routing_scope, use_analytics, use_primary, use_replica
from tests.routing.helpers import run_async, wait_for_replica, where_read
from tests.routing.routingapp.models import Article, Event, PageView

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
REPLICAS = {"replica1", "replica2"}


def test_reads_land_on_the_hot_standby_and_see_replicated_rows():
    Article.objects.create(title="replicated")
    wait_for_replica()
    with routing_scope():  # a new request: no pin from the write above
        alias, in_recovery = where_read(Article)
        assert alias in REPLICAS
        assert in_recovery is True
        assert Article.objects.get(title="replicated").title == "replicated"


def test_writes_land_on_the_primary():
    article = Article.objects.create(title="written")
    assert article._state.db == "default"
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is False
    Article.objects.filter(pk=article.pk).update(title="updated")  # a standby would refuse


def test_a_read_right_after_a_write_sees_it_on_the_primary():
    with routing_scope():
        for n in range(50):
            Article.objects.create(title=f"mine {n}")
            assert where_read(Article) == ("default", False)
            assert Article.objects.filter(title=f"mine {n}").exists()


def test_reads_in_an_atomic_block_see_its_uncommitted_rows():
    with transaction.atomic():
        Article.objects.create(title="uncommitted")
        assert where_read(Article) == ("default", False)
        assert Article.objects.filter(title="uncommitted").exists()
        with use_replica():
            assert where_read(Article)[1] is True
            assert not Article.objects.filter(title="uncommitted").exists()


def test_reads_in_an_atomic_block_on_a_replica_stay_on_that_replica():
    # A transaction opened on one replica (a consistent snapshot for a report) reads
    # from it, not from whichever replica the weights pick (replica1 weighs 3 to 1).
    with routing_scope(), transaction.atomic(using="replica2"):
        assert {where_read(Article)[0] for _ in range(20)} == {"replica2"}
        with use_replica():
            assert where_read(Article)[0] == "replica2"
        with use_primary():
            assert where_read(Article) == ("default", False)


def test_use_primary_reads_the_primary_without_a_write():
    with use_primary():
        assert where_read(Article) == ("default", False)
    assert where_read(Article)[1] is True


def test_analytics_models_are_stored_and_read_on_the_analytics_database():
    view = PageView.objects.create(path="/")
    assert view._state.db == "analytics"
    assert PageView.objects.get().path == "/"
    assert where_read(PageView) == ("analytics", False)
    with connections["default"].cursor() as cursor:
        tables = connections["default"].introspection.table_names(cursor)
    assert PageView._meta.db_table not in tables
    assert Article._meta.db_table in tables


def test_use_analytics_sends_reads_to_the_analytics_database():
    with use_analytics():
        alias, _ = where_read(Article)
    assert alias == "analytics"


def test_the_events_set_has_its_own_primary_and_replica():
    event = Event.objects.create(kind="signup")
    assert event._state.db == "events"
    wait_for_replica()
    with routing_scope():
        assert where_read(Event) == ("events_replica", True)
        assert Event.objects.get().kind == "signup"
    assert not Article.objects.using("default").exists()


def test_many_reads_honour_the_weights_and_all_land_on_the_standby():
    reads = 2000
    landed = Counter()
    standby = 0
    for _ in range(reads):
        alias, in_recovery = where_read(Article)
        landed[alias] += 1
        standby += in_recovery
    share = landed["replica1"] / reads
    print(f"\nweights 3:1 over {reads} reads: {dict(landed)} (replica1 share {share:.3f})")
    assert standby == reads
    assert 0.70 < share < 0.80


def test_async_tasks_route_by_their_own_context():
    Article.objects.create(title="async")
    wait_for_replica()

    async def reader(manager, log, name):
        with manager:
            for _ in range(5):
                log.append((name, *await sync_to_async(where_read)(Article)))
                await asyncio.sleep(0.001)

    async def main():
        log = []
        with routing_scope():
            await asyncio.gather(
                reader(use_primary(), log, "primary"),
                reader(use_replica(), log, "replica"),
                reader(routing_scope(), log, "plain"),
            )
        assert await Article.objects.filter(title="async").acount() == 1
        return log

    log = run_async(main)
    assert {(alias, rec) for name, alias, rec in log if name == "primary"} == {("default", False)}
    assert {rec for name, _, rec in log if name == "replica"} == {True}
    assert {rec for name, _, rec in log if name == "plain"} == {True}


def test_an_async_write_pins_the_reads_of_the_same_task():
    async def main():
        with routing_scope():
            await Article.objects.acreate(title="async write")
            return await sync_to_async(where_read)(Article)

    assert run_async(main) == ("default", False)


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_a_test_that_does_not_allow_the_replicas_reads_the_primary():
    assert where_read(Article) == ("default", False)
    from django_dataflow.routing.health import health

    assert health.snapshot()["replica1"]["failures"] == 0
