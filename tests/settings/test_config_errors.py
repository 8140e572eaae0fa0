"""Bad input gets a clear error that names the setting and the fix, at the right time
(docs/design.md, "Configuration: errors vs system checks"); nothing is silently dropped.
"""

from __future__ import annotations

import math
import signal
import threading
import time

import pytest
from django.core import checks as django_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_dataflow import DataFlowConfig, conf
from django_dataflow.checks.pool import ignored_pool_settings_messages, pool_settings_messages
from django_dataflow.monitoring import publisher
from django_dataflow.pool import ConnectionPool
from django_dataflow.routing.config import parse as parse_routing
from django_dataflow.settings.options import ConfigurationError
from django_dataflow.settings.validation import inspect_pool_options
from tests.pool.connectors import SQLiteFileConnector

SECRET = "Zq9XvwKp7Wmq"


def pg_entry(**overrides):
    return {
        "ENGINE": "django_dataflow.backends.postgresql",
        "NAME": "app",
        "USER": "app",
        "PASSWORD": SECRET,
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "CONN_MAX_AGE": 0,
        "OPTIONS": {},
        "POOL": {"pool_size": 5},
        **overrides,
    }


def dataflow_messages(databases):
    """The messages of the settings checks of DATABASES entries, against ``databases``."""
    return pool_settings_messages(databases) + ignored_pool_settings_messages(databases)


# -- DATABASE_URL ---------------------------------------------------------------------------


def test_a_url_whose_password_holds_an_unencoded_slash_is_refused_not_misparsed():
    # "2024/secret" as a password: parsed as HOST='u', PORT=2024,
    # NAME='secret@db.internal/app', USER and PASSWORD empty. Nothing is reported.
    with pytest.raises(ConfigurationError, match="percent-encode"):
        DataFlowConfig(database_url=f"postgres://u:2024/{SECRET}@db.internal/app")


# -- POOL -----------------------------------------------------------------------------------


def test_a_pool_timeout_beyond_what_a_wait_accepts_is_refused_by_the_check():
    # 1e10 s passes E003 ("a finite number > 0") but threading's wait() cannot take it.
    inspection = inspect_pool_options(
        "default", "postgresql", pg_entry(POOL={"pool_timeout": 1e10})
    )
    assert [problem.kind for problem in inspection.errors] == ["invalid_value"]


def test_a_pool_given_a_huge_timeout_waits_instead_of_crashing(tmp_path):
    # The engine (no validation of its own) clamps the wait to what threading accepts:
    # an OverflowError from Event.wait() would leave the waiter queued, and the next
    # connection given back would go to it and be lost for good.
    pool = ConnectionPool(
        SQLiteFileConnector(tmp_path / "db.sqlite3"),
        name="huge",
        pool_size=1,
        max_overflow=0,
        timeout=1e10,
    )
    try:
        held = pool.checkout()
        got = []
        thread = threading.Thread(target=lambda: got.append(pool.checkout()), daemon=True)
        thread.start()
        while pool.get_stats()["wait_queue"] < 1:
            time.sleep(0.001)
        pool.checkin(held, held.lease)
        thread.join(5)
        assert len(got) == 1 and got[0] is held
        pool.checkin(got[0], got[0].lease)
    finally:
        pool.close()


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")
def test_a_wait_interrupted_by_an_exception_leaves_the_queue(tmp_path):
    # A KeyboardInterrupt (here: an exception from a signal handler) inside the wait.
    # The waiter leaves the queue: the next connection given back must not go to it.
    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    pool = ConnectionPool(
        SQLiteFileConnector(tmp_path / "db.sqlite3"),
        name="interrupted",
        pool_size=1,
        max_overflow=0,
        timeout=5,
    )
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        held = pool.checkout()
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Interrupted):
            pool.checkout()
        assert pool.get_stats()["wait_queue"] == 0
        pool.checkin(held, held.lease)
        assert pool.get_stats()["idle_connections"] == 1
        again = pool.checkout(timeout=0.5)  # the connection is not lost
        pool.checkin(again, again.lease)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        pool.close()


def test_check_does_not_crash_on_options_that_are_not_a_dict():
    # manage.py check aborts with an AttributeError traceback (and so does the wrapper
    # for 'default' during django.setup()), instead of a message naming OPTIONS.
    messages = pool_settings_messages({"default": pg_entry(OPTIONS="sslmode=require")})
    assert any("OPTIONS" in message.msg for message in messages)


@pytest.mark.parametrize("key", ["connect_timeout", "read_timeout", "prepare_threshold"])
def test_a_driver_option_in_pool_is_sent_to_options_not_to_a_lookalike_pool_option(key):
    # POOL={"connect_timeout": 5} gets "Did you mean 'pool_timeout'?" (a checkout wait,
    # not a connect timeout); prepare_threshold gets 'pool_leak_threshold'.
    [problem] = inspect_pool_options("default", "postgresql", pg_entry(POOL={key: 5})).problems
    assert "OPTIONS" in problem.hint, problem.hint
    assert "Did you mean" not in problem.hint, problem.hint


def test_pool_options_inside_options_are_reported_by_the_checks():
    # OPTIONS={"pool_size": 5}: no check message; the first connect fails with the
    # driver's 'invalid connection option "pool_size"' (MySQL/SQLite: a TypeError),
    # which names neither POOL nor the fix.
    messages = dataflow_messages({"default": pg_entry(OPTIONS={"pool_size": 5})})
    assert any("pool_size" in message.msg for message in messages), messages


@pytest.mark.parametrize(
    "entry",
    [
        pg_entry(ENGINE="django.db.backends.postgresql"),  # forgot to switch ENGINE
        {**pg_entry(), "POOL": None, "pool": {"pool_size": 5}},  # lower-case key
        {**pg_entry(), "POOL": None, "pool_size": 5},  # option at the top level
    ],
    ids=["POOL-on-a-stock-ENGINE", "lower-case-pool", "pool_size-at-top-level"],
)
def test_pool_settings_that_would_be_ignored_are_reported(entry):
    messages = dataflow_messages({"default": entry})
    assert messages, "the pool settings are silently ignored"


# -- DATAFLOW_ROUTING -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dbset",
    [
        {"replicas": {"replica": math.inf}},  # random.choices: "Total of weights must be finite"
        {"replicas": ["replica"], "pin_seconds": math.inf},  # middleware: int(inf) OverflowError
    ],
    ids=["infinite-weight", "infinite-pin_seconds"],
)
def test_routing_values_that_crash_the_router_at_run_time_are_refused(dbset):
    config, problems = parse_routing({"default": dbset}, {"default": {}, "replica": {}})
    assert config is None and problems


# -- the monitoring settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATAFLOW_STATS_PUBLISH", "no"),
        ("DATAFLOW_STATS_INTERVAL", -1),
        ("DATAFLOW_METRICS_TOKEN", 12345),
        ("DATAFLOW_APPLICATION_NAME_PREFIX", 3),
        ("DATAFLOW_CHECK_THRESHOLDS", {"usgae": 0.9}),
    ],
)
def test_bad_monitoring_settings_are_system_check_errors(name, value):
    # docs/design.md: "Settings problems are system checks". These are raised only
    # when first used: in a signal receiver, a view, the publisher thread.
    with override_settings(**{name: value}):
        messages = django_checks.run_checks(tags=["dataflow"])
    assert any(name in message.msg for message in messages), messages


def test_a_bad_stats_publish_value_is_not_silently_ignored_after_the_first_failure():
    # The first connection of the process fails with a HookError (pool_connect receiver);
    # after that the publisher stays "started" but never runs: nothing is published, and
    # nothing says so again.
    fresh = publisher.Publisher()
    with override_settings(DATAFLOW_STATS_PUBLISH="no"):
        with pytest.raises(ImproperlyConfigured):
            fresh.start()
        with pytest.raises(ImproperlyConfigured):
            fresh.start()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATAFLOW_STATS_INTERVAL", math.inf),  # the publisher thread dies: wait(inf)
        ("DATAFLOW_STATS_INTERVAL", math.nan),
        ("DATAFLOW_CHECK_THRESHOLDS", []),  # falsy: silently the defaults
        ("DATAFLOW_CHECK_THRESHOLDS", ""),
        ("DATAFLOW_CHECK_THRESHOLDS", {"usage": math.nan}),  # never unhealthy
    ],
)
def test_unusable_monitoring_values_are_refused(name, value):
    read = {
        "DATAFLOW_STATS_INTERVAL": conf.publish_interval,
        "DATAFLOW_CHECK_THRESHOLDS": conf.check_thresholds,
    }[name]
    with override_settings(**{name: value}), pytest.raises(ImproperlyConfigured, match=name):
        read()
