"""Django test-suite tests that may fail with our engines while passing with Django's own.

run.py passes a (vendor, mode) combination when every test that fails or errors with the
django_dataflow engine also fails with the stock engine, or is listed here. A key is a
test id as unittest prints it (``module.Class.test_method``); a key naming a class or a
module covers every test under it. Each value says why the deviation is acceptable.
Keep it short: an entry here is a behaviour difference a user can run into.
After a full run, run.py lists entries that no run needed, so stale ones can go.
"""

from __future__ import annotations

DEVIATIONS: dict[str, str] = {
    "backends.postgresql.tests.Tests.test_connect_pool": (
        "a test of Django's own PostgreSQL pool (OPTIONS['pool'], psycopg_pool). With our "
        "ENGINE that option is refused (system check dataflow.E008, ImproperlyConfigured "
        "at connect): two pools would fight over each connection and Django skips its "
        "per-connection setup when the option is set"
    ),
    "backends.postgresql.tests.Tests.test_connect_pool_with_timezone": (
        "a test of Django's own PostgreSQL pool (OPTIONS['pool'], psycopg_pool). With our "
        "ENGINE that option is refused (system check dataflow.E008, ImproperlyConfigured "
        "at connect): two pools would fight over each connection and Django skips its "
        "per-connection setup when the option is set"
    ),
    "backends.base.test_base.ConnectionHealthChecksTests": (
        "these tests patch CONN_MAX_AGE=None (a persistent connection); a pooled ENGINE "
        "refuses CONN_MAX_AGE other than 0 with ImproperlyConfigured by design (the pool "
        "keeps connections between requests). Health checks with a pool are covered by "
        "tests/backends/test_lifecycle.py (CONN_HEALTH_CHECKS and unusable connections)"
    ),
}


# Added to DEVIATIONS when our engines run with POOL["pool_scope"] = "transaction".
TRANSACTION_SCOPE_DEVIATIONS: dict[str, str] = {
    "backends.postgresql.tests.Tests.test_connect_non_autocommit": (
        "the test sets AUTOCOMMIT=False on the entry; with pool_scope='transaction' such an "
        "entry is refused (system check dataflow.E012, ImproperlyConfigured at connect): a "
        "connection outside autocommit is always in a transaction and would never go back "
        "to the pool before the end of the request"
    ),
}


def deviations_for(pool_scope: str) -> dict[str, str]:
    """The deviations that apply to runs with this ``pool_scope``."""
    if pool_scope == "transaction":
        return {**DEVIATIONS, **TRANSACTION_SCOPE_DEVIATIONS}
    return dict(DEVIATIONS)


def deviation_key(test_id: str, known: dict[str, str] = DEVIATIONS) -> str | None:
    """The key of ``known`` covering ``test_id`` (itself, a class, a module or a subtest's test)."""
    for key in known:
        if test_id == key or test_id.startswith((key + ".", key + " ")):
            return key
    return None
