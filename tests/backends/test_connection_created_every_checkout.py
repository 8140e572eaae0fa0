"""``connection_created`` at every checkout, as Django's own pool sends it (issue 22).

``django.contrib.postgres`` registers hstore's and citext's type OIDs in a
``connection_created`` receiver. A migration that re-creates the extension gives the
types new OIDs; sent once per physical connection, the signal would leave every pooled
connection opened before with the old ones, and hstore values would come back as ``str``.
"""

from __future__ import annotations

import threading

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import modify_settings

pytestmark = pytest.mark.django_db(transaction=True)

HSTORE = "select 'a=>1'::hstore"


def req(function):
    """One request around ``function``, framed by Django's request signals."""
    request_started.send(sender=None)
    try:
        return function()
    finally:
        request_finished.send(sender=None)


def q(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone() if cursor.description else None


def on_threads(count, function, together=False):
    """``function`` as one request on each of ``count`` new threads, one thread after
    the other, or all at once (``together``: each holds its connection until all have
    one, so that each uses a physical connection of its own)."""
    results = [None] * count
    barrier = threading.Barrier(count)

    def run(index):
        def work():
            value = function()
            if together:
                barrier.wait(10)
            return value

        results[index] = req(work)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
        if not together:
            thread.join()
    for thread in threads:
        thread.join()
    return results


def recreate_hstore():
    """What CreateExtension.database_forwards does after the DDL."""
    from django.contrib.postgres.signals import get_hstore_oids, register_type_handlers

    q("drop extension hstore cascade")
    q("create extension hstore")
    get_hstore_oids.cache_clear()
    register_type_handlers(connection)


@pytest.fixture
def contrib_postgres(vendor):
    """A project with django.contrib.postgres and hstore, on a pool of its own (no
    connection opened by earlier tests, before the type handlers were registered)."""
    if vendor != "postgresql":
        pytest.skip("hstore and django.contrib.postgres's type handlers are PostgreSQL's")
    from django.contrib.postgres.signals import get_hstore_oids

    req(lambda: q("create extension if not exists hstore"))
    get_hstore_oids.cache_clear()
    options = connection.settings_dict["OPTIONS"]
    # A changed entry leads to another pool (docs/backends.md, "Settings that change").
    options["application_name"] = "dataflow-issue-22"
    try:
        with modify_settings(INSTALLED_APPS={"append": "django.contrib.postgres"}):
            yield
    finally:
        connection.close()
        del options["application_name"]
        req(lambda: q("drop extension if exists hstore cascade"))
        get_hstore_oids.cache_clear()


def test_hstore_reads_a_dict_on_every_connection_after_the_extension_is_recreated(
    contrib_postgres,
):
    req(lambda: q("create extension if not exists hstore"))
    # Both physical connections set up with today's OIDs.
    assert on_threads(2, lambda: type(q(HSTORE)[0]), together=True) == [dict, dict]
    req(recreate_hstore)
    # The stock backend, and Django's own pool, read dict four times.
    assert on_threads(4, lambda: type(q(HSTORE)[0])) == [dict] * 4


def test_a_parked_connection_taken_back_gets_the_signal_too(contrib_postgres):
    # Two physical connections, parked by threads that have ended: the next thread
    # takes one of them rather than the one this thread parks.
    on_threads(2, lambda: q(HSTORE), together=True)
    assert type(req(lambda: q(HSTORE))[0]) is dict  # this thread's connection, parked now
    reuses = connection.dataflow_pool.get_stats()["thread_reuses"]
    on_threads(1, recreate_hstore)  # another thread, another physical connection
    assert type(req(lambda: q(HSTORE))[0]) is dict
    # Taken back from parking (connection_created receivers leave thread affinity on).
    assert connection.dataflow_pool.get_stats()["thread_reuses"] == reuses + 1


def test_connection_created_is_sent_at_every_checkout_and_every_take_back(vendor):
    seen = []

    def receiver(sender, connection, **kwargs):
        seen.append(connection.connection)

    req(lambda: q("select 1"))
    connection_created.connect(receiver)
    try:
        for _ in range(3):
            req(lambda: q("select 1"))  # taken back from parking
        connection.close()  # checked in: the next request checks out
        req(lambda: q("select 1"))
    finally:
        connection_created.disconnect(receiver)
    assert len(seen) == 4
    assert all(raw is not None for raw in seen)


def test_a_receiver_failing_at_a_take_back_discards_the_connection(vendor):
    def explode(sender, connection, **kwargs):
        raise RuntimeError("receiver failed")

    req(lambda: q("select 1"))  # parked
    pool = connection.dataflow_pool
    before = pool.get_stats()["invalidated_by_reason"].get("setup_failed", 0)
    connection_created.connect(explode)
    try:
        request_started.send(sender=None)
        with pytest.raises(RuntimeError):
            q("select 1")
    finally:
        connection_created.disconnect(explode)
        request_finished.send(sender=None)
    assert pool.get_stats()["invalidated_by_reason"]["setup_failed"] == before + 1
    assert pool.get_stats()["checked_out"] == 0
    assert req(lambda: q("select 1")) == (1,)
