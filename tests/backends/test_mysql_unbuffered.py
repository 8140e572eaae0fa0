"""MySQL/MariaDB: an unbuffered cursor's unread rows never reach the next borrower.

With ``OPTIONS["cursorclass"] = MySQLdb.cursors.SSCursor`` a cursor streams its rows from
the server. Rows left unread at the end of a request are still on the connection, and
the server status flags that tell the pool whether a connection is clean come from the
previous reply: they say idle. The pool drops the unread rows before it parks or lends
the connection, else the next borrower's first query fails with (2014, "Commands out of
sync"). (The same left by raw driver calls,
``send_query()`` without ``read_query_result()``, is not detected: docs/backends.md.)
"""

from __future__ import annotations

import MySQLdb.cursors
import pytest
from django.db import connections

from tests.backends.helpers import backend_pid

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _mysql_only(vendor):
    if vendor != "mysql":
        pytest.skip("MySQL/MariaDB's unbuffered cursors")


def streaming_wrapper():
    """A wrapper whose cursors stream (SSCursor), on a pool of one connection."""
    base = connections["default"].settings_dict
    settings_dict = {
        **base,
        "OPTIONS": {**base["OPTIONS"], "cursorclass": MySQLdb.cursors.SSCursor},
        "POOL": {**base["POOL"], "pool_size": 1, "pool_max_overflow": 0},
    }
    return connections["default"].__class__(settings_dict, "default")


def rows(wrapper, sql="SELECT 1"):
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def leave_rows_unread(wrapper):
    cursor = wrapper.cursor()
    cursor.execute("SELECT 1 UNION SELECT 2 UNION SELECT 3")
    return cursor  # still referenced: not closed, its rows still on the connection


@pytest.mark.parametrize("next_borrower", ["same thread", "another wrapper"])
def test_unread_rows_of_a_streaming_cursor_are_dropped_before_the_connection_goes_back(
    next_borrower,
):
    first = streaming_wrapper()
    second = first if next_borrower == "same thread" else streaming_wrapper()
    pid = backend_pid(first)
    kept = leave_rows_unread(first)
    first.close_if_unusable_or_obsolete()  # request_finished: parks or checks in
    if second is not first:
        first.close()
    try:
        assert rows(second) == ((1,),)
        assert backend_pid(second) == pid  # the same session, not a discarded one
    finally:
        second.close()
        first.close()
        del kept
