"""``pool_scope="transaction"``: a connection is held only while a query, a transaction,
an open cursor or a ``pooled_session()`` block needs it (docs/backends.md, "Transaction
scope"), on each vendor's real server."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from django.db import connections, transaction
from django.db.backends.signals import connection_created

from django_dataflow.api import pooled_session
from django_dataflow.signals import pool_checkin, pool_checkout

pytestmark = pytest.mark.django_db(transaction=True)


def scoped_wrapper(**pool):
    """A wrapper of its own (and so a pool of its own) with transaction scope."""
    default = connections["default"]
    settings_dict = {
        **default.settings_dict,
        "POOL": {
            **default.settings_dict["POOL"],
            "pool_scope": "transaction",
            **pool,
        },
    }
    return default.__class__(settings_dict, "default")


@pytest.fixture
def wrapper():
    """This thread's ``connections["default"]`` for the test, with transaction scope
    (so the ORM, ``atomic()`` and ``pooled_session()`` use it)."""
    original = connections["default"]
    original.close()
    wrapper = scoped_wrapper()
    connections["default"] = wrapper
    yield wrapper
    connections["default"] = original
    wrapper.close()


def select_one(wrapper):
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


_seen = []  # DB-API connections whose id() was taken: kept alive, so ids stay unique


def backend_pid(wrapper):
    """The pooled connection a query of ``wrapper`` runs on, through a cursor (as the
    ORM's queries do): the id of the DB-API connection. (Not the server's session id:
    behind PgBouncer, tests/integration/reliability, a client connection has none.)"""
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
        _seen.append(wrapper.connection)
        return id(wrapper.connection)


def held(wrapper) -> bool:
    """Does ``wrapper`` hold a connection (checked out, not parked)?"""
    return wrapper.dataflow_record is not None


def checked_out(wrapper) -> int:
    return wrapper.dataflow_pool.get_stats()["checked_out"]


def test_a_query_in_autocommit_gives_the_connection_back(wrapper):
    assert select_one(wrapper) == 1
    assert not held(wrapper)
    assert checked_out(wrapper) == 0
    # The next query takes it again, the same one with thread affinity.
    first = backend_pid(wrapper)
    assert backend_pid(wrapper) == first
    assert checked_out(wrapper) == 0


def test_the_orm_gives_the_connection_back_after_each_query(wrapper):
    from django.contrib.contenttypes.models import ContentType

    assert ContentType.objects.count() >= 0
    assert not held(wrapper)
    list(ContentType.objects.all()[:3])
    assert not held(wrapper)


def test_the_connection_is_kept_for_the_whole_atomic_block(wrapper):
    with transaction.atomic():
        first = backend_pid(wrapper)
        assert held(wrapper)
        with transaction.atomic():
            assert backend_pid(wrapper) == first
        assert held(wrapper)
        assert backend_pid(wrapper) == first
    assert not held(wrapper)
    assert checked_out(wrapper) == 0


def test_on_commit_callbacks_run_and_their_queries_work(wrapper):
    results = []
    with transaction.atomic():
        select_one(wrapper)
        transaction.on_commit(lambda: results.append(select_one(wrapper)))
        transaction.on_commit(lambda: results.append(select_one(wrapper)))
    assert results == [1, 1]
    assert not held(wrapper)


def test_an_open_cursor_keeps_the_connection(wrapper):
    cursor = wrapper.cursor()
    cursor.execute("SELECT 1")
    assert held(wrapper)
    select_one(wrapper)  # another cursor opened and closed: the first is still open
    assert held(wrapper)
    cursor.fetchall()
    assert held(wrapper)  # read, but still open: it could run another query
    cursor.close()
    assert not held(wrapper)


def test_a_cursor_collected_without_close_does_not_keep_the_connection(wrapper):
    cursor = wrapper.cursor()
    cursor.execute("SELECT 1")
    del cursor  # collected at once (reference counting)
    select_one(wrapper)
    assert not held(wrapper)


def test_autocommit_off_by_hand_keeps_the_connection_until_it_is_on_again(wrapper):
    wrapper.set_autocommit(False)
    first = backend_pid(wrapper)
    assert held(wrapper)
    assert backend_pid(wrapper) == first
    wrapper.commit()
    assert held(wrapper)
    wrapper.set_autocommit(True)
    assert not held(wrapper)


def test_pooled_session_keeps_one_connection_for_the_block(wrapper):
    with pooled_session() as session:
        assert session is wrapper
        first = backend_pid(wrapper)
        # Another thread wants a connection meanwhile: it gets another one.
        other = []
        thread = threading.Thread(target=lambda: other.append(scoped_pid(wrapper)))
        thread.start()
        thread.join()
        assert backend_pid(wrapper) == first
        assert other and other[0] != first
        assert held(wrapper)
    assert not held(wrapper)


def scoped_pid(wrapper):
    twin = wrapper.__class__(wrapper.settings_dict, "default")
    try:
        return backend_pid(twin)
    finally:
        twin.close()


def test_constraint_checks_turned_off_keep_the_connection(wrapper):
    assert wrapper.disable_constraint_checking() in (True, False)
    if not wrapper._dataflow_constraints_off:
        pytest.skip(f"{wrapper.vendor} has no session-wide constraint switch")
    first = backend_pid(wrapper)
    assert held(wrapper)
    assert backend_pid(wrapper) == first
    wrapper.enable_constraint_checking()
    select_one(wrapper)
    assert not held(wrapper)


def test_checkout_and_checkin_hooks_fire_once_per_transaction(wrapper, restore_hooks):
    events = []
    pool_checkout.connect(lambda sender, **kw: events.append("out"), weak=False)
    pool_checkin.connect(lambda sender, **kw: events.append("in"), weak=False)
    select_one(wrapper)
    select_one(wrapper)
    with transaction.atomic():
        select_one(wrapper)
        select_one(wrapper)
    assert events == ["out", "in"] * 3


def test_connection_created_reaches_a_connection_once_a_request(wrapper, restore_hooks):
    seen = []

    def receiver(sender, connection, **kwargs):
        if connection is wrapper:
            seen.append(1)

    connection_created.connect(receiver, weak=False)
    try:
        wrapper.close_if_unusable_or_obsolete()  # request_started
        for _ in range(5):
            select_one(wrapper)
        assert len(seen) == 1
        wrapper.close_if_unusable_or_obsolete()  # request_finished
        wrapper.close_if_unusable_or_obsolete()  # the next request_started
        select_one(wrapper)
        assert len(seen) == 2
    finally:
        connection_created.disconnect(receiver)


def test_threads_share_a_small_pool_between_their_queries():
    """Eight threads, each `query; sleep 200 ms; query`, on a pool of 2 + 0: served,
    with at most two sessions, because no thread holds a connection while it sleeps."""
    wrapper = scoped_wrapper(pool_size=2, pool_max_overflow=0, pool_timeout=10)
    wrapper.close()
    errors, pids = [], set()

    def request():
        mine = wrapper.__class__(wrapper.settings_dict, "default")
        try:
            mine.close_if_unusable_or_obsolete()
            pids.add(backend_pid(mine))
            time.sleep(0.2)  # an external call
            pids.add(backend_pid(mine))
            mine.close_if_unusable_or_obsolete()
        except Exception as error:
            errors.append(error)
        finally:
            mine.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert errors == []
    assert len(pids) <= 2
    # Request scope would need 8 x 0.2 s / 2 sessions = 0.8 s at least.
    assert elapsed < 0.75, elapsed


def test_server_side_cursor_keeps_the_connection_while_iterating(wrapper):
    from django.contrib.contenttypes.models import ContentType

    if wrapper.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        pytest.skip("DISABLE_SERVER_SIDE_CURSORS: iterator() reads every row at once")
    iterator = ContentType.objects.all().iterator(chunk_size=1)
    next(iterator)
    assert held(wrapper)
    list(iterator)
    assert not held(wrapper)


@pytest.mark.parametrize("scope", ["request", "transaction"])
def test_executor_threads_of_async_requests_share_a_pool_of_two(scope):
    """``sync_to_async(thread_sensitive=False)`` runs each call in an executor thread
    that never sees ``request_finished``. With the request scope the first two threads
    keep the two connections for good and the others time out; with the transaction
    scope 100 concurrent requests are served."""
    import asyncio

    from asgiref.sync import sync_to_async

    from django_dataflow.errors import PoolTimeout

    settings_dict = scoped_wrapper(pool_size=2, pool_max_overflow=0, pool_timeout=1).settings_dict
    settings_dict["POOL"]["pool_scope"] = scope
    local = threading.local()
    made = []

    def view():
        wrapper = getattr(local, "wrapper", None)
        if wrapper is None:  # the executor thread's own connections["default"]
            wrapper = local.wrapper = connections["default"].__class__(settings_dict, "default")
            made.append(wrapper)
        select_one(wrapper)
        time.sleep(0.005)
        return select_one(wrapper)

    async def main():
        calls = [sync_to_async(view, thread_sensitive=False)() for _ in range(100)]
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        for wrapper in made:  # made in executor threads, closed from this one
            wrapper.inc_thread_sharing()
            wrapper.close()
    timeouts = [r for r in results if isinstance(r, PoolTimeout)]
    if scope == "transaction":
        assert results == [1] * 100
    else:
        assert timeouts, "the request scope strands the executor threads' connections"


def test_close_called_directly_between_transactions_closes_the_parked_connection(wrapper):
    """Django's ``_close()`` contract ("close the underlying connection, keep referring
    to it"), as its own suite uses it: after a query gave the connection back."""
    select_one(wrapper)
    assert not held(wrapper)
    pool = wrapper.dataflow_pool
    opened = pool.get_stats()["connections_created"]
    wrapper._close()
    if wrapper.vendor != "sqlite":  # (Django's SQLite is_usable() is always True)
        assert wrapper.is_usable() is False
    with contextlib.suppress(Exception):  # closing a closed connection raises on MySQL,
        wrapper.close()  # as with Django's own backend
    assert select_one(wrapper) == 1
    assert pool.get_stats()["connections_created"] == opened + 1


def test_a_connection_shared_with_other_threads_is_kept(wrapper):
    """``allow_thread_sharing`` (LiveServerTestCase): another thread may be using the
    connection, so it is not given back between queries."""
    wrapper.inc_thread_sharing()
    try:
        first = backend_pid(wrapper)
        assert held(wrapper)
        assert backend_pid(wrapper) == first
    finally:
        wrapper.dec_thread_sharing()
    select_one(wrapper)
    assert not held(wrapper)


def test_debug_cursors_give_the_connection_back_too(wrapper):
    """With DEBUG or CaptureQueriesContext, Django wraps cursors in its debug wrapper."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(wrapper) as captured:
        select_one(wrapper)
        assert not held(wrapper)
        select_one(wrapper)
    assert len(captured.captured_queries) == 2
    assert not held(wrapper)


def test_a_session_advisory_lock_stays_with_the_pooled_session():
    """A session-level lock taken inside ``pooled_session()`` is held by the session the
    block's later queries run on, even when another thread checks out a connection in
    between (without the block, it would get the locking session)."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("pg_advisory_lock is PostgreSQL's")
    wrapper = scoped_wrapper(pool_thread_affinity=False)
    original = connections["default"]
    connections["default"] = wrapper
    other_holds, release_other = threading.Event(), threading.Event()

    def other_request():
        twin = wrapper.__class__(wrapper.settings_dict, "default")
        try:
            twin.ensure_connection()  # holds a connection (no cursor closed yet)
            other_holds.set()
            release_other.wait(10)
        finally:
            twin.close()

    other = threading.Thread(target=other_request)
    try:
        with pooled_session():
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(4242)")
            other.start()
            assert other_holds.wait(10)
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(4242)")
                assert cursor.fetchone()[0] is True  # the same session holds the lock
    finally:
        release_other.set()
        other.join(10)
        connections["default"] = original
        wrapper.close()


def test_the_transaction_scope_waits_before_opening_overflow(wrapper):
    """Its pools open connections beyond pool_size only for a request that waited
    TRANSACTION_OVERFLOW_DELAY (docs/design.md); the request scope's at once."""
    from django_dataflow.backends.scope import TRANSACTION_OVERFLOW_DELAY

    select_one(wrapper)
    assert wrapper.dataflow_pool.overflow_delay == TRANSACTION_OVERFLOW_DELAY > 0
    request_scoped = connections["default"].__class__(
        {
            **wrapper.settings_dict,
            "POOL": {**wrapper.settings_dict["POOL"], "pool_scope": "request"},
        },
        "default",
    )
    try:
        select_one(request_scoped)
        assert request_scoped.dataflow_pool.overflow_delay == 0
    finally:
        request_scoped.close()


def test_pooled_connection_keeps_one_connection_for_the_block(wrapper):
    """The guide's ``with db.connection() as conn``: every statement of the block on the
    same connection, with the transaction scope too."""
    from django_dataflow.api import pooled_connection

    with pooled_connection() as conn:
        first = conn.execute("SELECT 1")
        kept = conn.wrapper.dataflow_record
        assert kept is not None
        conn.execute("SELECT 1")
        assert conn.wrapper.dataflow_record is kept
        assert first == [(1,)]
    assert not held(wrapper)


def test_djangos_make_cursor_is_still_the_one_the_scope_inlines(wrapper):
    """``TransactionScopeMixin.make_cursor`` builds Django's ``CursorWrapper`` itself
    instead of calling the base class's ``make_cursor``: that must still be all it does."""
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper

    for klass in type(wrapper).__mro__:
        if "make_cursor" in vars(klass) and klass.__module__.startswith("django.db"):
            assert klass is BaseDatabaseWrapper, f"{klass} overrides make_cursor"
    made = BaseDatabaseWrapper.make_cursor(wrapper, object())
    assert type(made) is CursorWrapper and made.db is wrapper
