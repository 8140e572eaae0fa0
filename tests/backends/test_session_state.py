"""Session state a borrower changes through Django's or the driver's API, which the pool
puts back before the next borrower gets the connection.

With Django's stock backend (``CONN_MAX_AGE = 0``) the session ends with the request, and
this state with it. Session state set with raw SQL (``SET`` variables, temporary tables,
session locks) is not tracked: it survives, as with persistent connections
(docs/backends.md).
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from tests.backends.helpers import backend_pid, make_wrapper

pytestmark = pytest.mark.django_db(transaction=True)


def two_borrowers():
    """Two wrappers on one single-connection pool: the second always gets the first's
    physical connection."""
    return (
        make_wrapper(pool_size=1, pool_max_overflow=0),
        make_wrapper(pool_size=1, pool_max_overflow=0),
    )


def end_request(wrapper):
    wrapper.close_if_unusable_or_obsolete()  # request_finished: parks or checks in
    wrapper.close()  # and really give it back, so that the other wrapper can take it


def insert_orphan_permission(wrapper):
    from django.contrib.auth.models import Permission

    with wrapper.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Permission._meta.db_table} (name, content_type_id, codename) "
            "VALUES ('orphan', 987654, 'orphan')"
        )


def test_foreign_key_checks_left_off_by_a_borrower_are_on_again_for_the_next(vendor):
    # disable_constraint_checking() runs SET foreign_key_checks=0 (MySQL) or PRAGMA
    # foreign_keys = OFF (SQLite). A request that does not turn them back on (an error
    # between the two calls, its own mistake) must not hand them off to the next
    # borrower, who would write rows that break foreign keys without an error.
    if vendor == "postgresql":
        pytest.skip("disable_constraint_checking() does nothing on PostgreSQL")
    first, second = two_borrowers()
    pid = backend_pid(first)
    assert first.disable_constraint_checking()
    end_request(first)
    try:
        assert backend_pid(second) == pid  # the same session: nothing was discarded
        with pytest.raises(IntegrityError):
            insert_orphan_permission(second)
    finally:
        second.close()


def test_a_connection_whose_checks_were_turned_back_on_is_parked_as_usual(vendor):
    if vendor == "postgresql":
        pytest.skip("disable_constraint_checking() does nothing on PostgreSQL")
    wrapper = make_wrapper()
    try:
        with wrapper.constraint_checks_disabled():
            pass
        wrapper.close_if_unusable_or_obsolete()
        assert wrapper._dataflow_parked
        with pytest.raises(IntegrityError):
            insert_orphan_permission(wrapper)
    finally:
        wrapper.close()


def test_psycopg_read_only_and_deferrable_set_by_a_borrower_are_restored(vendor):
    # The connector restores psycopg's isolation_level (docs/backends.md) and its
    # siblings read_only and deferrable: left set, the next borrower's transactions would
    # begin READ ONLY and its writes fail.
    if vendor != "postgresql":
        pytest.skip("psycopg connection attributes")
    from tests.testapp.models import Item

    first, second = two_borrowers()
    pid = backend_pid(first)
    first.connection.read_only = True
    first.connection.deferrable = True
    end_request(first)
    try:
        assert backend_pid(second) == pid
        assert second.connection.read_only is None
        assert second.connection.deferrable is None
        second.set_autocommit(False)  # what atomic() does
        try:
            with second.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {Item._meta.db_table} (name, active) VALUES ('x', true)"
                )
        finally:
            second.rollback()
            second.set_autocommit(True)
    finally:
        second.close()
