"""Django's test-database setup in a process whose pools were used before it.

Stock Django (``CONN_MAX_AGE = 0``) closes each request's connection, so a query after
``setup_databases()`` opens a new one, to the test database. docs/migrating.md promises
the same of the pool: "a query made before the test database exists cannot pin the pool
to the real database".
"""

from __future__ import annotations

import os

import pytest

from tests.integration.test_databases.helpers import run_probe, scratch_database


@pytest.mark.parametrize("mode", ["thread", "mirror"])
def test_a_connection_parked_before_setup_is_not_taken_back_after_it(vendor, mode):
    # thread: a thread started before setup (a scheduler started in AppConfig.ready())
    # serves a request before and one after. mirror: a TEST["MIRROR"] alias, whose
    # settings set_as_test_mirror() replaces. The second request must not take back the
    # connection parked by the first, which would query (and write to) the real database.
    real = f"dataflow_real_{os.getpid()}_{mode}"
    with scratch_database(vendor, real):
        result = run_probe("probe_parked", vendor, real, mode)
    before, after = result["seen"]
    assert before.endswith((real, f"{real}.sqlite3"))
    assert after == result["expected"], (
        f"a request after setup_databases() queried {after!r}, not the test database "
        f"{result['expected']!r}"
    )


def test_the_test_database_can_be_made_from_a_template_this_process_used(vendor):
    # PostgreSQL's CREATE DATABASE ... TEMPLATE refuses while anyone is connected to the
    # template; before, the idle pooled session on it (the process had used it and
    # closed its connection) made the creation fail.
    if vendor != "postgresql":
        pytest.skip("TEST['TEMPLATE'] is PostgreSQL's")
    real = f"dataflow_tpl_{os.getpid()}"
    with scratch_database(vendor, real):
        result = run_probe("probe_template", vendor, real)
    assert result["created"], result["error"]
