"""The DATABASE_URL helpers people already use: django-environ's ``env.db()`` and
``dj_database_url.config()`` put a URL's query parameters in ``OPTIONS``; the pool
options among them are the pool's (dataflow.I001), never the driver's
(docs/migrating.md, "Keeping env.db() or dj_database_url")."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
import environ
import pytest
from django.db.utils import ConnectionHandler

from django_dataflow.checks.pool import ignored_pool_settings_messages, pool_settings_messages
from django_dataflow.settings.validation import inspect_pool_options

QUERY = "pool_size=3&pool_max_overflow=1&pool_pre_ping=true&pool_recycle=none&pool_timeout=7"
EXPECTED = {
    "pool_size": 3,
    "pool_max_overflow": 1,
    "pool_pre_ping": True,
    "pool_recycle": None,
    "pool_timeout": 7.0,
}


def environ_entry(url: str, engine: str) -> dict:
    return environ.Env(DATABASE_URL=(str, url)).db(engine=engine)


def dj_database_url_entry(url: str, engine: str) -> dict:
    return dj_database_url.parse(url, engine=engine)


HELPERS = pytest.mark.parametrize(
    "helper", [environ_entry, dj_database_url_entry], ids=["env.db", "dj_database_url"]
)


@HELPERS
@pytest.mark.parametrize(
    ("url", "engine", "vendor"),
    [
        ("postgres://app:pw@db:5432/app", "django_dataflow.backends.postgresql", "postgresql"),
        ("mysql://app:pw@db:3306/app", "django_dataflow.backends.mysql", "mysql"),
    ],
)
def test_pool_options_in_a_helpers_url_are_the_entrys_pool_options(helper, url, engine, vendor):
    entry = helper(f"{url}?{QUERY}&connect_timeout=5", engine)
    assert "pool_size" in entry["OPTIONS"]  # where the helper put it

    inspection = inspect_pool_options("default", vendor, entry)
    assert {name: inspection.options[name] for name in EXPECTED} == EXPECTED
    assert inspection.errors == []

    [message] = pool_settings_messages({"default": entry})
    assert message.id == "dataflow.I001"
    assert message.level < 30  # an Info: not a warning, nothing to silence
    for name in EXPECTED:
        assert repr(name) in message.msg


@HELPERS
def test_the_driver_never_gets_them_and_the_pool_does(helper, tmp_path: Path, django_db_blocker):
    entry = helper(
        f"sqlite:///{tmp_path / 'helper.sqlite3'}?{QUERY}", "django_dataflow.backends.sqlite3"
    )
    # ConnectionHandler fills in Django's defaults, as for settings.DATABASES.
    handler = ConnectionHandler({"default": entry})
    wrapper = handler["default"]
    try:
        # sqlite3.connect(pool_size=3) would raise a TypeError.
        with django_db_blocker.unblock(), wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        pool = wrapper.dataflow_pool
        assert (pool.pool_size, pool.max_overflow) == (3, 1)
    finally:
        wrapper.close()
        if wrapper.dataflow_pool is not None:
            wrapper.dataflow_pool.close()


@HELPERS
def test_a_bad_value_in_the_url_names_the_parameter(helper):
    entry = helper("postgres://app:pw@db/app?pool_size=many", "django_dataflow.backends.postgresql")
    messages = pool_settings_messages({"default": entry})
    [error] = [message for message in messages if message.id == "dataflow.E003"]
    assert "['OPTIONS']['pool_size'] must be a whole number, not 'many'" in error.msg


def test_the_same_option_in_options_and_pool_with_two_values_is_an_error():
    entry = dj_database_url_entry(
        "postgres://app:pw@db/app?pool_size=3", "django_dataflow.backends.postgresql"
    )
    entry["POOL"] = {"pool_size": 4}
    ids = [message.id for message in pool_settings_messages({"default": entry})]
    assert "dataflow.E010" in ids


def test_agreeing_values_in_options_and_pool_are_not_an_error():
    entry = dj_database_url_entry(
        "postgres://app:pw@db/app?pool_size=3", "django_dataflow.backends.postgresql"
    )
    entry["POOL"] = {"pool_size": 3}
    assert [m.id for m in pool_settings_messages({"default": entry})] == ["dataflow.I001"]


@HELPERS
def test_a_helper_without_our_engine_gets_w005_naming_the_engine_argument(helper):
    entry = helper("postgres://app:pw@db/app?pool_size=3", "django.db.backends.postgresql")
    [message] = ignored_pool_settings_messages({"default": entry})
    assert message.id == "dataflow.W005"
    assert "engine='django_dataflow.backends.postgresql'" in message.hint
