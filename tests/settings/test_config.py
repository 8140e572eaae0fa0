"""DataFlowConfig, DATABASE_URL parsing and the sizing helpers; no database server needed."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from psycopg import IsolationLevel

from django_dataflow import DataFlowConfig, get_pool_config, recommended_pool_size
from django_dataflow.settings import sizing as config_module
from django_dataflow.settings.options import ALL_OPTIONS, POOL_OPTIONS
from django_dataflow.settings.validation import inspect_pool_options

PG = "postgres://app:s3cret@db.example:5432/shop"
MY = "mysql://app:s3cret@db.example:3306/shop"
LITE = "sqlite:////tmp/cfg_shop.sqlite3"
URLS = {"postgresql": PG, "mysql": MY, "sqlite": LITE}


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)


def refused(match: str, **fields):
    """The ConfigurationError DataFlowConfig(**fields) raises; it must match ``match``."""
    with pytest.raises(ImproperlyConfigured, match=match) as raised:
        DataFlowConfig(**fields)
    assert isinstance(raised.value, ValueError)
    assert "s3cret" not in str(raised.value)
    return raised.value


# -- the guide's code ---------------------------------------------------------------------


def test_the_guides_custom_configuration_becomes_a_pooled_postgresql_entry():
    config = DataFlowConfig(
        database_url="postgresql://user:pass@localhost/db",
        pool_size=20,
        pool_max_overflow=30,
        pool_recycle=3600,
        pool_pre_ping=True,
        pool_timeout=30.0,
    )
    entry = config.as_database()
    assert entry["ENGINE"] == "django_dataflow.backends.postgresql"
    assert (entry["NAME"], entry["USER"], entry["PASSWORD"], entry["HOST"]) == (
        "db",
        "user",
        "pass",
        "localhost",
    )
    assert entry["CONN_MAX_AGE"] == 0
    pool = entry["POOL"]
    assert (pool["pool_size"], pool["pool_max_overflow"], pool["pool_recycle"]) == (20, 30, 3600)
    assert pool["pool_pre_ping"] is True
    assert pool["pool_timeout"] == 30.0
    assert config.vendor == "postgresql"


def test_the_guides_per_database_configurations_are_accepted_word_for_word():
    postgres = DataFlowConfig(
        database_url="postgresql://...",
        pool_size=20,
        pool_max_overflow=30,
        pool_recycle=3600,
        pool_pre_ping=True,
        statement_cache_size=1200,
    )
    mysql = DataFlowConfig(
        database_url="mysql://...",
        pool_size=30,
        pool_max_overflow=50,
        pool_recycle=7200,
        pool_pre_ping=True,
        isolation_level="READ_COMMITTED",
    )
    sqlite = DataFlowConfig(
        database_url="sqlite:///./data.db",
        pool_size=1,
        pool_max_overflow=0,
        check_same_thread=False,
    )
    assert postgres.as_database()["POOL"]["statement_cache_size"] == 1200
    assert mysql.as_database()["OPTIONS"]["isolation_level"] == "read committed"
    assert sqlite.as_database()["NAME"] == "./data.db"
    assert sqlite.as_database()["POOL"]["pool_size"] == 1


def test_the_guides_later_assignments_work_and_are_validated():
    config = DataFlowConfig(database_url=MY)
    config.pool_recycle = 3500  # "Below MySQL timeout (3600)"
    assert config.pool_recycle == 3500.0
    assert config.as_database()["POOL"]["pool_recycle"] == 3500.0
    with pytest.raises(ImproperlyConfigured, match="pool_recycle must be >= 0, not -1"):
        config.pool_recycle = -1
    assert config.pool_recycle == 3500.0, "a refused assignment leaves the config unchanged"
    postgres = DataFlowConfig(database_url=PG)
    postgres.statement_cache_size = 2000
    assert postgres.as_database()["POOL"]["statement_cache_size"] == 2000


def test_assigning_a_field_the_config_does_not_have_is_refused():
    config = DataFlowConfig(database_url=PG)
    with pytest.raises(AttributeError, match="no field 'pool_sise'"):
        config.pool_sise = 3


def test_every_schema_option_is_a_dataflowconfig_field_and_nothing_else():
    fields = {field.name for field in dataclasses.fields(DataFlowConfig)}
    assert fields == {"database_url", *ALL_OPTIONS}


def test_fields_are_keyword_only():
    with pytest.raises(TypeError):
        DataFlowConfig(PG)  # type: ignore[misc]


# -- defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["postgresql", "mysql", "sqlite"])
def test_fields_left_out_take_the_vendors_defaults_from_the_schema(vendor):
    config = DataFlowConfig(database_url=URLS[vendor])
    expected = {
        name: option.default_for(vendor)
        for name, option in POOL_OPTIONS.items()
        if option.applies_to(vendor)
    }
    assert config.as_database()["POOL"] == expected
    assert config.pool_size == expected["pool_size"]


def test_the_guides_per_vendor_numbers_are_the_defaults():
    postgres, mysql, sqlite = (DataFlowConfig(database_url=URLS[v]) for v in URLS)
    assert (postgres.pool_size, postgres.pool_max_overflow, postgres.pool_recycle) == (20, 30, 3600)
    assert postgres.pool_pre_ping is True
    assert (mysql.pool_size, mysql.pool_max_overflow, mysql.pool_recycle) == (30, 50, 7200)
    assert mysql.pool_pre_ping is True
    assert (sqlite.pool_size, sqlite.pool_max_overflow) == (5, 0)
    assert sqlite.check_same_thread is False


def test_fields_a_vendor_does_not_use_read_none():
    mysql = DataFlowConfig(database_url=MY)
    assert mysql.statement_cache_size is None
    assert mysql.check_same_thread is None
    assert DataFlowConfig(database_url=LITE).isolation_level is None


@pytest.mark.parametrize("vendor", ["postgresql", "mysql", "sqlite"])
def test_a_generated_entry_passes_the_same_validation_as_the_backend(vendor):
    for config in (
        DataFlowConfig(database_url=URLS[vendor]),
        DataFlowConfig(database_url=URLS[vendor], pool_size=3, pool_leak_threshold=60),
    ):
        inspection = inspect_pool_options("default", vendor, config.as_database())
        assert inspection.problems == []


# -- every field: accepted and refused values ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("pool_size", 1, 1),
        ("pool_size", 20.0, 20),
        ("pool_max_overflow", 0, 0),
        ("pool_recycle", 1800, 1800.0),
        ("pool_recycle", 0, 0.0),
        ("pool_recycle", None, None),
        ("pool_pre_ping", False, False),
        ("pool_timeout", 300.0, 300.0),
        ("pool_pre_ping_bypass", 0, 0.0),
        ("pool_overflow_idle_timeout", 5, 5.0),
        ("pool_leak_threshold", 300, 300.0),
        ("pool_leak_threshold", None, None),
        ("pool_leak_action", "log_and_recycle", "log_and_recycle"),
        ("pool_leak_check_interval", 60, 60.0),
        ("statement_cache_size", 1200, 1200),
        ("statement_cache_size", 0, 0),
        ("behind_transaction_pooler", True, True),
        ("isolation_level", "SERIALIZABLE", "SERIALIZABLE"),
        ("isolation_level", "read committed", "READ_COMMITTED"),
        ("isolation_level", "Repeatable-Read", "REPEATABLE_READ"),
        ("isolation_level", IsolationLevel.READ_UNCOMMITTED, "READ_UNCOMMITTED"),
    ],
)
def test_each_field_accepts_and_normalises_a_valid_value(field, value, expected):
    config = DataFlowConfig(database_url=PG, **{field: value})
    assert getattr(config, field) == expected
    assert type(getattr(config, field)) is type(expected)


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("pool_size", 0, "must be >= 1, not 0"),
        ("pool_size", "20", "must be a whole number, not '20'"),
        ("pool_size", 2.5, "must be a whole number"),
        ("pool_size", True, "must be a whole number"),
        ("pool_max_overflow", -1, "must be >= 0"),
        ("pool_recycle", "1h", "must be a number of seconds"),
        ("pool_recycle", -5, "must be >= 0"),
        ("pool_pre_ping", "yes", "must be True or False"),
        ("pool_pre_ping", 1, "must be True or False"),
        ("pool_timeout", 0, "must be greater than 0"),
        ("pool_timeout", None, "must be a number of seconds"),
        ("pool_pre_ping_bypass", -0.1, "must be >= 0"),
        ("pool_overflow_idle_timeout", "30", "must be a number of seconds"),
        ("pool_leak_threshold", -1, "must be >= 0"),
        ("pool_leak_action", "shout", "must be one of 'log', 'log_and_recycle'"),
        ("pool_leak_check_interval", 0, "must be greater than 0"),
        ("statement_cache_size", -1, "must be >= 0"),
        ("behind_transaction_pooler", "true", "must be True or False"),
        ("isolation_level", "SNAPSHOT", "must be one of READ_UNCOMMITTED"),
        ("isolation_level", 2, "must be one of"),
        ("check_same_thread", "no", "must be True or False"),
    ],
)
def test_each_field_refuses_a_wrong_value_naming_the_field(field, value, complaint):
    error = refused(rf"DataFlowConfig: {field} {complaint}", database_url=PG, **{field: value})
    assert isinstance(error, ImproperlyConfigured)


def test_database_url_must_be_a_string():
    refused(r"database_url must be a URL string.*not PosixPath", database_url=Path("/tmp/x"))


# -- vendors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "field", "value"),
    [
        (MY, "statement_cache_size", 100),
        (LITE, "statement_cache_size", 100),
        (MY, "behind_transaction_pooler", True),
        (LITE, "isolation_level", "SERIALIZABLE"),
        (PG, "check_same_thread", False),
    ],
)
def test_an_option_of_another_vendor_is_refused(url, field, value):
    if field == "check_same_thread":
        # False is the "off" value, accepted anywhere; True is refused on every vendor.
        assert DataFlowConfig(database_url=url, check_same_thread=False).check_same_thread is None
        value = True
    refused(rf"{field} \(given\) applies only to", database_url=url, **{field: value})


def test_an_off_value_of_another_vendors_option_is_accepted_so_snippets_can_be_shared():
    shared = {"statement_cache_size": 0, "behind_transaction_pooler": False}
    for url in URLS.values():
        DataFlowConfig(database_url=url, **shared)
    assert (
        "statement_cache_size"
        not in DataFlowConfig(database_url=MY, **shared).as_database()["POOL"]
    )


def test_sqlite_isolation_level_is_refused_with_the_sqlite_advice():
    refused("transaction_mode", database_url=LITE, isolation_level="SERIALIZABLE")


def test_isolation_level_becomes_django_options_per_vendor():
    postgres = DataFlowConfig(database_url=PG, isolation_level="SERIALIZABLE").as_database()
    assert postgres["OPTIONS"]["isolation_level"] is IsolationLevel.SERIALIZABLE
    mysql = DataFlowConfig(database_url=MY, isolation_level="REPEATABLE_READ").as_database()
    assert mysql["OPTIONS"]["isolation_level"] == "repeatable read"


def test_isolation_level_is_only_sent_when_given():
    assert "isolation_level" not in DataFlowConfig(database_url=PG).as_database()["OPTIONS"]
    assert "isolation_level" not in DataFlowConfig(database_url=MY).as_database()["OPTIONS"]


def test_statement_cache_size_turns_on_server_side_binding_and_prepared_statements():
    entry = DataFlowConfig(database_url=PG, statement_cache_size=1200).as_database()
    assert entry["POOL"]["statement_cache_size"] == 1200
    assert entry["OPTIONS"]["server_side_binding"] is True
    assert entry["OPTIONS"]["prepare_threshold"] == 5
    from_url = DataFlowConfig(database_url=PG + "?prepare_threshold=0", statement_cache_size=10)
    assert from_url.as_database()["OPTIONS"]["prepare_threshold"] == 0


def test_without_statement_cache_django_keeps_prepared_statements_off():
    options = DataFlowConfig(database_url=PG).as_database()["OPTIONS"]
    assert "server_side_binding" not in options
    assert "prepare_threshold" not in options  # Django's default: None, disabled


def test_behind_a_transaction_pooler_server_side_cursors_are_disabled():
    entry = DataFlowConfig(database_url=PG, behind_transaction_pooler=True).as_database()
    assert entry["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert entry["POOL"]["behind_transaction_pooler"] is True
    assert "prepare_threshold" not in entry["OPTIONS"]


def test_statement_cache_behind_a_transaction_pooler_is_refused():
    refused(
        "statement_cache_size=100 cannot work with behind_transaction_pooler",
        database_url=PG,
        statement_cache_size=100,
        behind_transaction_pooler=True,
    )
    refused(
        "prepare_threshold=0 in database_url cannot work with behind_transaction_pooler",
        database_url=PG + "?prepare_threshold=0",
        behind_transaction_pooler=True,
    )


def test_check_same_thread_true_is_refused_because_pooled_connections_change_threads():
    refused(
        "check_same_thread=True cannot work with a pool", database_url=LITE, check_same_thread=True
    )


def test_sqlite_entries_default_to_wal_and_immediate_transactions():
    options = DataFlowConfig(database_url=LITE).as_database()["OPTIONS"]
    assert options["init_command"] == "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL"
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "check_same_thread" not in options  # Django always forces it off


def test_an_own_sqlite_init_command_replaces_the_wal_default():
    config = DataFlowConfig(database_url=LITE + "?init_command=PRAGMA%20foreign_keys%3DON")
    options = config.as_database()["OPTIONS"]
    assert options["init_command"] == "PRAGMA foreign_keys=ON"
    assert options["transaction_mode"] == "IMMEDIATE"
    overridden = DataFlowConfig(database_url=LITE).as_database(
        OPTIONS={"transaction_mode": "DEFERRED"}
    )
    assert overridden["OPTIONS"]["transaction_mode"] == "DEFERRED"


def test_in_memory_sqlite_gets_no_wal():
    for url in ("sqlite://:memory:", "sqlite://"):
        entry = DataFlowConfig(database_url=url).as_database()
        assert entry["NAME"] == ":memory:"
        assert entry["ENGINE"] == "django_dataflow.backends.sqlite3"
        assert "init_command" not in entry["OPTIONS"]


# -- where the database comes from ----------------------------------------------------------------


def test_without_database_url_the_environment_variable_is_used(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", MY + "?pool_size=7")
    config = DataFlowConfig(pool_recycle=600)
    assert config.vendor == "mysql"
    assert (config.pool_size, config.pool_recycle) == (7, 600.0)
    assert config.database_url is None
    assert config.as_database()["HOST"] == "db.example"


def test_errors_in_the_environment_variable_name_it_and_not_its_value(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", PG + "?pool_size=many")
    refused(r"the DATABASE_URL environment variable: query parameter 'pool_size' must be a whole")


def test_without_any_url_the_database_is_db_sqlite3_in_the_project():
    # DJANGO_SETTINGS_MODULE is tests.dbsettings.<vendor>: the project is the parent of tests/.
    entry = DataFlowConfig().as_database()
    assert entry["ENGINE"] == "django_dataflow.backends.sqlite3"
    assert entry["NAME"] == str(Path(__file__).resolve().parents[2] / "db.sqlite3")
    assert entry["OPTIONS"]["init_command"].startswith("PRAGMA journal_mode=WAL")


def test_without_a_settings_module_the_sqlite_file_is_in_the_working_directory(
    monkeypatch, tmp_path
):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    monkeypatch.chdir(tmp_path)
    assert DataFlowConfig().as_database()["NAME"] == str(tmp_path.resolve() / "db.sqlite3")


def test_an_empty_environment_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "  ")
    assert DataFlowConfig().vendor == "sqlite"


# -- DATABASE_URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "engine"),
    [
        ("postgres", "postgresql"),
        ("postgresql", "postgresql"),
        ("pgsql", "postgresql"),
        ("psql", "postgresql"),
        ("postgresql+asyncpg", "postgresql"),
        ("mysql", "mysql"),
        ("mysql2", "mysql"),
        ("mariadb", "mysql"),
        ("mysql+pymysql", "mysql"),
        ("MySQL", "mysql"),
    ],
)
def test_each_url_scheme_maps_to_our_engine(scheme, engine):
    entry = DataFlowConfig(database_url=f"{scheme}://app:s3cret@h:1234/shop").as_database()
    assert entry["ENGINE"] == f"django_dataflow.backends.{engine}"
    assert (entry["NAME"], entry["USER"], entry["PASSWORD"]) == ("shop", "app", "s3cret")
    assert (entry["HOST"], entry["PORT"]) == ("h", 1234)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("sqlite:///./data.db", "./data.db"),
        ("sqlite:///relative/app.db", "relative/app.db"),
        ("sqlite:////var/lib/app.db", "/var/lib/app.db"),
        ("sqlite3:////var/lib/app.db", "/var/lib/app.db"),
    ],
)
def test_sqlite_urls_name_the_file(url, name):
    entry = DataFlowConfig(database_url=url).as_database()
    assert entry["ENGINE"] == "django_dataflow.backends.sqlite3"
    assert entry["NAME"] == name


def test_the_issues_example_url_carries_pool_options():
    url = "postgres://u:p@h/db?pool_size=20&pool_max_overflow=30&pool_pre_ping=true"
    pool = DataFlowConfig(database_url=url).as_database()["POOL"]
    assert (pool["pool_size"], pool["pool_max_overflow"], pool["pool_pre_ping"]) == (20, 30, True)


@pytest.mark.parametrize(
    ("query", "field", "expected"),
    [
        ("pool_size=20", "pool_size", 20),
        ("pool_max_overflow=0", "pool_max_overflow", 0),
        ("pool_recycle=1800", "pool_recycle", 1800.0),
        ("pool_recycle=none", "pool_recycle", None),
        ("pool_recycle=0", "pool_recycle", 0.0),
        ("pool_pre_ping=false", "pool_pre_ping", False),
        ("pool_pre_ping=On", "pool_pre_ping", True),
        ("pool_timeout=2.5", "pool_timeout", 2.5),
        ("pool_pre_ping_bypass=0", "pool_pre_ping_bypass", 0.0),
        ("pool_overflow_idle_timeout=60", "pool_overflow_idle_timeout", 60.0),
        ("pool_leak_threshold=300", "pool_leak_threshold", 300.0),
        ("pool_leak_action=log_and_recycle", "pool_leak_action", "log_and_recycle"),
        ("pool_leak_check_interval=10", "pool_leak_check_interval", 10.0),
        ("statement_cache_size=1200", "statement_cache_size", 1200),
        ("behind_transaction_pooler=yes", "behind_transaction_pooler", True),
        ("isolation_level=READ_COMMITTED", "isolation_level", "READ_COMMITTED"),
        ("isolation_level=repeatable%20read", "isolation_level", "REPEATABLE_READ"),
    ],
)
def test_each_option_can_ride_in_the_query_string(query, field, expected):
    config = DataFlowConfig(database_url=f"{PG}?{query}")
    assert getattr(config, field) == expected
    assert field not in config.as_database()["OPTIONS"] or field == "isolation_level"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("pool_size=abc", "query parameter 'pool_size' must be a whole number, not 'abc'"),
        ("pool_size=0", "query parameter 'pool_size' must be >= 1, not 0"),
        ("pool_size=2.5", "query parameter 'pool_size' must be a whole number, not '2.5'"),
        ("pool_pre_ping=maybe", "query parameter 'pool_pre_ping' must be true or false"),
        ("pool_timeout=0", "query parameter 'pool_timeout' must be greater than 0"),
        ("pool_recycle=1h", "query parameter 'pool_recycle' must be a number of seconds"),
        ("pool_leak_action=shout", "query parameter 'pool_leak_action' must be one of"),
        ("isolation_level=SNAPSHOT", "query parameter 'isolation_level' must be one of"),
        (
            "pool_sise=3",
            r"query parameter 'pool_sise' is not a django-dataflow option\. "
            "Did you mean 'pool_size'",
        ),
        ("pool_whatever=3", "query parameter 'pool_whatever' is not a django-dataflow option"),
        (
            "statment_cache_size=3",
            r"query parameter 'statment_cache_size' is not a django-dataflow option\. "
            "Did you mean 'statement_cache_size'",
        ),
        ("pool_size=1&pool_size=2", "query parameter 'pool_size' is given twice"),
        ("conn_max_age=600", "query parameter 'conn_max_age'=600 asks for persistent connections"),
        (
            "conn_max_age=None",
            "query parameter 'conn_max_age'=None asks for persistent connections",
        ),
        (
            "conn_health_checks=perhaps",
            "query parameter 'conn_health_checks' must be true or false",
        ),
    ],
)
def test_wrong_values_in_the_url_get_clear_errors_without_the_password(query, message):
    refused(f"database_url: {message}", database_url=f"{PG}?{query}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("oracle://app:s3cret@h/db", "scheme 'oracle', which has no django-dataflow backend"),
        ("postgis://app:s3cret@h/db", "scheme 'postgis'"),
        ("app:s3cret@h/db", "is not a database URL"),
        ("db.example/shop", "is not a database URL"),
        ("http://[::1/x", "is not a database URL"),
        ("sqlite://app:s3cret@h/db.sqlite3", "an SQLite URL has no host part"),
    ],
)
def test_urls_that_are_not_ours_are_refused_without_echoing_them(url, message):
    refused(message, database_url=url)


def test_driver_options_in_the_query_string_reach_options():
    config = DataFlowConfig(
        database_url=f"{PG}?sslmode=require&connect_timeout=10&pool_size=3&application_name=shop"
    )
    assert config.as_database()["OPTIONS"] == {
        "sslmode": "require",
        "connect_timeout": 10,
        "application_name": "shop",
    }


def test_djangos_entry_keys_in_the_query_string_become_real_booleans():
    entry = DataFlowConfig(
        database_url=f"{PG}?conn_health_checks=true&atomic_requests=yes&"
        "disable_server_side_cursors=1&autocommit=True"
    ).as_database()
    assert entry["CONN_HEALTH_CHECKS"] is True
    assert entry["ATOMIC_REQUESTS"] is True
    assert entry["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert entry["AUTOCOMMIT"] is True
    assert entry["CONN_MAX_AGE"] == 0


def test_a_percent_encoded_password_and_a_socket_directory_are_decoded():
    entry = DataFlowConfig(database_url="postgres://app:p%40ss%2Fword@h/db").as_database()
    assert entry["PASSWORD"] == "p@ss/word"
    socket = DataFlowConfig(database_url="postgres://%2Fvar%2Frun%2Fpostgresql/db").as_database()
    assert socket["HOST"] == "/var/run/postgresql"


def test_several_postgresql_hosts_are_kept_for_libpq():
    entry = DataFlowConfig(database_url="postgres://u:p@h1:5432,h2:5433/db").as_database()
    assert (entry["HOST"], entry["PORT"]) == ("h1,h2", "5432,5433")


def test_an_option_given_twice_with_different_values_is_refused():
    refused(
        r"pool_size=10 is given both as a keyword and, as 20, in database_url",
        database_url=f"{PG}?pool_size=20",
        pool_size=10,
    )
    assert DataFlowConfig(database_url=f"{PG}?pool_size=20", pool_size=20).pool_size == 20


def test_an_option_of_another_vendor_in_the_url_is_refused():
    refused(
        r"statement_cache_size \(in the URL\) applies only to PostgreSQL",
        database_url=MY + "?statement_cache_size=5",
    )


# -- the entry ----------------------------------------------------------------------------------


def test_repr_masks_the_password():
    text = repr(DataFlowConfig(database_url=PG, pool_size=3))
    assert "s3cret" not in text
    assert "app:***@db.example" in text
    assert "pool_size=3" in text


def test_as_database_merges_options_and_adds_other_keys():
    config = DataFlowConfig(database_url=f"{PG}?sslmode=require", statement_cache_size=10)
    entry = config.as_database(OPTIONS={"connect_timeout": 5}, TEST={"NAME": "cfg_test"})
    assert entry["OPTIONS"]["sslmode"] == "require"
    assert entry["OPTIONS"]["connect_timeout"] == 5
    assert entry["OPTIONS"]["server_side_binding"] is True
    assert entry["TEST"] == {"NAME": "cfg_test"}


def test_as_database_refuses_pool_and_conn_max_age_overrides():
    config = DataFlowConfig(database_url=PG)
    with pytest.raises(ImproperlyConfigured, match="set pool options as DataFlowConfig fields"):
        config.as_database(POOL={"pool_size": 1})
    with pytest.raises(ImproperlyConfigured, match="keeps CONN_MAX_AGE at 0"):
        config.as_database(CONN_MAX_AGE=None)


def test_each_call_returns_a_fresh_entry():
    config = DataFlowConfig(database_url=f"{PG}?sslmode=require")
    first = config.as_database()
    first["OPTIONS"]["sslmode"] = "disable"
    first["POOL"]["pool_size"] = 1
    second = config.as_database()
    assert second["OPTIONS"]["sslmode"] == "require"
    assert second["POOL"]["pool_size"] == 20


def test_configs_with_the_same_values_are_equal():
    assert DataFlowConfig(database_url=PG, pool_size=3) == DataFlowConfig(
        database_url=PG, pool_size=3.0
    )


# -- sizing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workload", "cpu_count", "spindles", "expected"),
    [
        ("balanced", 8, 1, 17),  # 8 * 2 + 1
        ("balanced", 4, 1, 10),  # 9, raised to the minimum of 10
        ("balanced", 16, 0, 32),
        ("balanced", 8, 4, 20),
        ("read_heavy", 8, 1, 25),  # int(17 * 1.5)
        ("write_heavy", 8, 1, 12),  # int(17 * 0.75)
        ("write_heavy", 2, 1, 10),  # int(3.75), raised to 10
        ("read-heavy", 8, 1, 25),
        ("WRITE_HEAVY", 16, 1, 24),
    ],
)
def test_recommended_pool_size_follows_the_guides_formula(workload, cpu_count, spindles, expected):
    assert recommended_pool_size(workload, cpu_count=cpu_count, spindles=spindles) == expected


def test_recommended_pool_size_counts_this_processes_cpus_by_default(monkeypatch):
    monkeypatch.setattr(config_module, "available_cpus", lambda: 12)
    assert recommended_pool_size() == 25
    assert recommended_pool_size("read_heavy") == 37


def test_available_cpus_is_a_positive_count():
    assert config_module.available_cpus() >= 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workload": "mixed"}, "workload must be one of 'balanced', 'read_heavy', 'write_heavy'"),
        ({"cpu_count": 0}, "cpu_count must be a whole number >= 1, not 0"),
        ({"cpu_count": 2.0}, "cpu_count must be a whole number"),
        ({"spindles": -1}, "spindles must be a whole number >= 0, not -1"),
        ({"spindles": True}, "spindles must be a whole number"),
    ],
)
def test_recommended_pool_size_refuses_wrong_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recommended_pool_size(**kwargs)


def test_get_pool_config_in_production_follows_the_guide(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    config = get_pool_config(database_url=PG, cpu_count=4)
    assert (config.pool_size, config.pool_max_overflow, config.pool_recycle) == (16, 24, 1800)
    assert config.pool_pre_ping is True


def test_get_pool_config_elsewhere_follows_the_guide():
    config = get_pool_config(database_url=MY, environment="staging")
    assert (config.pool_size, config.pool_max_overflow, config.pool_recycle) == (5, 10, 3600)


def test_get_pool_config_reads_database_url_from_the_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", PG)
    monkeypatch.setattr(config_module, "available_cpus", lambda: 2)
    config = get_pool_config(environment="production")
    assert config.vendor == "postgresql"
    assert config.pool_size == 8


# -- in a real settings file --------------------------------------------------------------------


def test_a_settings_module_can_build_databases_with_dataflowconfig(tmp_path):
    """Importing django_dataflow from settings.py must not touch settings or the database,
    and the default SQLite file lands next to the project package."""
    package = tmp_path / "cfgproject"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(
        textwrap.dedent(
            """
            from django_dataflow import DataFlowConfig, recommended_pool_size

            SECRET_KEY = "x"
            INSTALLED_APPS = ["django_dataflow"]
            DATABASES = {
                "default": DataFlowConfig(
                    pool_size=recommended_pool_size(cpu_count=1)
                ).as_database()
            }
            """
        )
    )
    script = (
        "import django; django.setup();"
        "from django.conf import settings; from django.core.management import call_command;"
        "print(settings.DATABASES['default']['NAME']); call_command('check')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cfgproject.settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[2])]),
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(tmp_path.resolve() / "db.sqlite3")
    assert "System check identified no issues" in done.stdout


@pytest.mark.parametrize("vendor_url", ["postgresql://u@h/db", "mysql://u@h/db", "sqlite:///x.db"])
def test_pool_scope_from_the_config_and_from_a_url(vendor_url):
    by_field = DataFlowConfig(database_url=vendor_url, pool_scope="transaction").as_database()
    by_query = DataFlowConfig(database_url=f"{vendor_url}?pool_scope=transaction").as_database()
    assert by_field["POOL"]["pool_scope"] == by_query["POOL"]["pool_scope"] == "transaction"
    assert DataFlowConfig(database_url=vendor_url).as_database()["POOL"]["pool_scope"] == "request"
    with pytest.raises(ImproperlyConfigured, match="pool_scope"):
        DataFlowConfig(database_url=vendor_url, pool_scope="statement")
