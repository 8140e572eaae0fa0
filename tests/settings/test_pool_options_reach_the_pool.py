"""Every POOL option of the schema reaches the pool engine or a named reader.

The backends build ``ConnectionPool``'s keyword arguments from the schema
(``settings/options.py``), so an option that is validated and documented but never given
to the pool fails here, not in production.
"""

from __future__ import annotations

import inspect

import pytest

from django_dataflow.backends import base as backends_base
from django_dataflow.backends.sqlite3.base import DatabaseWrapper
from django_dataflow.pool import ConnectionPool
from django_dataflow.settings.options import POOL_OPTIONS, pool_arguments

# A value other than every vendor's default, per option kind.
NON_DEFAULT = {
    "pool_size": 3,
    "pool_max_overflow": 4,
    "pool_recycle": 123.0,
    "pool_pre_ping": True,
    "pool_timeout": 7.5,
    "pool_pre_ping_bypass": 0.25,
    "pool_overflow_idle_timeout": 11.0,
    "pool_thread_affinity": False,
    "pool_leak_threshold": 9.0,
    "pool_leak_action": "log_and_recycle",
    "pool_leak_check_interval": 2.5,
}


def test_every_pool_option_names_the_pool_argument_or_its_reader():
    for name, option in POOL_OPTIONS.items():
        assert option.pool_argument or option.used_by, (
            f"POOL option {name!r} reaches neither ConnectionPool (pool_argument) nor a "
            "named reader (used_by)"
        )


def test_every_pool_argument_is_a_keyword_of_connection_pool():
    keywords = inspect.signature(ConnectionPool).parameters
    for name, option in POOL_OPTIONS.items():
        if option.pool_argument is not None:
            assert option.pool_argument in keywords, (name, option.pool_argument)


def test_every_option_given_to_the_engine_has_a_value_here():
    # Keeps NON_DEFAULT complete: an option added to the schema must be added here too.
    given = {name for name, option in POOL_OPTIONS.items() if option.pool_argument}
    assert given == set(NON_DEFAULT)


@pytest.mark.parametrize("vendor", ["sqlite"])
def test_a_wrapper_builds_its_pool_with_every_option_of_its_entry(
    tmp_path, monkeypatch, django_db_blocker, vendor
):
    received: dict[str, object] = {}

    class RecordingPool(ConnectionPool):
        def __init__(self, connector, **kwargs):
            received.update(kwargs)
            super().__init__(connector, **kwargs)

    monkeypatch.setattr(backends_base, "ConnectionPool", RecordingPool)
    entry = {
        "ENGINE": "django_dataflow.backends.sqlite3",
        "NAME": str(tmp_path / "reach.sqlite3"),
        "POOL": dict(NON_DEFAULT),
    }
    wrapper = DatabaseWrapper({**_django_defaults(), **entry}, "reach")
    with django_db_blocker.unblock():
        try:
            wrapper.ensure_connection()
            pool = wrapper.dataflow_pool
            assert isinstance(pool, RecordingPool)
        finally:
            wrapper.close()
            if wrapper.dataflow_pool is not None:
                wrapper.dataflow_pool.close()
    for name, value in NON_DEFAULT.items():
        argument = POOL_OPTIONS[name].pool_argument
        assert received[argument] == value, name
    assert pool_arguments(NON_DEFAULT) == {
        POOL_OPTIONS[name].pool_argument: value for name, value in NON_DEFAULT.items()
    }


def _django_defaults() -> dict[str, object]:
    """What Django's ConnectionHandler fills into every DATABASES entry."""
    return {
        "ATOMIC_REQUESTS": False,
        "AUTOCOMMIT": True,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": {},
        "TIME_ZONE": None,
        "USER": "",
        "PASSWORD": "",
        "HOST": "",
        "PORT": "",
        "TEST": {},
    }
