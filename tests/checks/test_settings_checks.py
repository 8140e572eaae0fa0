"""System checks that read settings only (dataflow.E001-E007, W001-W002), their docs, and
the wiring done at startup; no database server needed. The checks that ask a server
(W003, W004) are in tests/checks/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import checks as django_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_dataflow import conf
from django_dataflow.checks import pool as checks
from django_dataflow.checks import server as server_checks
from django_dataflow.settings.options import ALL_OPTIONS, CONNECTION_SETTINGS, POOL_OPTIONS
from django_dataflow.settings.validation import validate_pooled_databases

DOCS = Path(__file__).resolve().parents[2] / "docs"
ENGINES = {
    "postgresql": "django_dataflow.backends.postgresql",
    "mysql": "django_dataflow.backends.mysql",
    "sqlite": "django_dataflow.backends.sqlite3",
}


def entry(vendor: str = "postgresql", pool: object = None, **keys: object) -> dict:
    settings_dict = {"ENGINE": ENGINES[vendor], "NAME": "cfg_checks", **keys}
    if pool is not None:
        settings_dict["POOL"] = pool
    return settings_dict


def ids(vendor: str = "postgresql", pool: object = None, **keys: object) -> list[str]:
    """The check ids raised for one entry ``default`` built like ``entry()``."""
    messages = checks.pool_settings_messages({"default": entry(vendor, pool, **keys)})
    return [message.id for message in messages]


def only(message_id: str, vendor: str = "postgresql", pool: object = None, **keys: object):
    messages = checks.pool_settings_messages({"default": entry(vendor, pool, **keys)})
    assert [message.id for message in messages] == [message_id]
    return messages[0]


# -- E001 ------------------------------------------------------------------------------------


def test_e001_a_pool_that_is_not_a_dict():
    message = only("dataflow.E001", pool=[("pool_size", 3)])
    assert message.level == django_checks.ERROR
    assert "must be a dict of pool options, not list" in message.msg


def test_e001_not_raised_for_a_dict_or_no_pool():
    assert ids(pool={"pool_size": 3}) == []
    assert ids() == []
    assert ids(pool=None) == []


# -- E002 ------------------------------------------------------------------------------------


def test_e002_an_unknown_key_with_the_nearest_valid_name():
    message = only("dataflow.E002", pool={"pool_sise": 3})
    assert "unknown option 'pool_sise'" in message.msg
    assert message.hint.startswith("Did you mean 'pool_size'? Valid options: ")


def test_e002_a_connection_setting_in_pool_says_where_it_belongs():
    message = only("dataflow.E002", vendor="mysql", pool={"isolation_level": "read committed"})
    assert "OPTIONS['isolation_level']" in message.hint
    message = only("dataflow.E002", vendor="sqlite", pool={"check_same_thread": False})
    assert "check_same_thread=False" in message.hint


def test_e002_every_unknown_key_is_reported():
    assert ids(pool={"pool_sise": 3, "max_overflow": 2}) == ["dataflow.E002", "dataflow.E002"]


def test_e002_not_raised_for_every_valid_key():
    pool = {name: option.default_for("postgresql") for name, option in POOL_OPTIONS.items()}
    assert ids(pool=pool) == []


# -- E003 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "complaint"),
    [
        ("pool_size", 0, "must be >= 1, not 0"),
        ("pool_size", "20", "must be a whole number"),
        ("pool_max_overflow", -1, "must be >= 0"),
        ("pool_recycle", "1h", "must be a number of seconds"),
        ("pool_pre_ping", "yes", "must be True or False"),
        ("pool_timeout", 0, "must be greater than 0"),
        ("pool_pre_ping_bypass", None, "must be a number of seconds"),
        ("pool_overflow_idle_timeout", -1, "must be >= 0"),
        ("pool_leak_threshold", "5m", "must be a number of seconds"),
        ("pool_leak_action", "recycle", "must be one of 'log', 'log_and_recycle'"),
        ("pool_leak_check_interval", 0, "must be greater than 0"),
        ("statement_cache_size", 1.5, "must be a whole number"),
        ("behind_transaction_pooler", 1, "must be True or False"),
    ],
)
def test_e003_a_wrong_value_names_the_key_and_the_rule(key, value, complaint):
    message = only("dataflow.E003", pool={key: value})
    assert f"settings.DATABASES['default']['POOL'][{key!r}] {complaint}" in message.msg
    assert message.hint.startswith(f"{key}: ")


def test_e003_every_wrong_value_is_reported_at_once():
    assert ids(pool={"pool_size": 0, "pool_timeout": -1}) == ["dataflow.E003", "dataflow.E003"]


def test_e003_not_raised_for_right_values():
    assert ids(pool={"pool_size": 1, "pool_recycle": None, "pool_leak_threshold": 30}) == []


# -- E004 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["mysql", "sqlite"])
def test_e004_a_postgresql_only_option_on_another_vendor(vendor):
    message = only("dataflow.E004", vendor=vendor, pool={"statement_cache_size": 100})
    assert "applies only to PostgreSQL" in message.msg
    assert ids(vendor, pool={"behind_transaction_pooler": True}) == ["dataflow.E004"]


def test_e004_not_raised_for_off_values_or_on_postgresql():
    off = {"statement_cache_size": 0, "behind_transaction_pooler": False}
    assert ids("mysql", pool=off) == []
    assert ids("sqlite", pool=off) == []


# -- E005 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_age", [60, None])
def test_e005_conn_max_age_with_a_pooled_engine(max_age):
    message = only("dataflow.E005", CONN_MAX_AGE=max_age)
    assert f"CONN_MAX_AGE={max_age!r}, but its ENGINE pools connections" in message.msg


def test_e005_not_raised_for_zero_or_for_other_engines():
    assert ids(CONN_MAX_AGE=0) == []
    stock = {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 60, "POOL": "ignored"}
    assert checks.pool_settings_messages({"default": stock}) == []


# -- E012 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["postgresql", "mysql", "sqlite"])
def test_e012_transaction_scope_without_autocommit(vendor):
    message = only(
        "dataflow.E012", vendor=vendor, pool={"pool_scope": "transaction"}, AUTOCOMMIT=False
    )
    assert "AUTOCOMMIT=False with POOL['pool_scope']='transaction'" in message.msg
    assert "pool_scope" in message.hint


def test_e012_not_raised_with_autocommit_or_the_request_scope():
    assert ids(pool={"pool_scope": "transaction"}) == []
    assert ids(pool={"pool_scope": "transaction"}, AUTOCOMMIT=True) == []
    assert ids(pool={"pool_scope": "request"}, AUTOCOMMIT=False) == []


def test_pool_scope_takes_only_request_or_transaction():
    message = only("dataflow.E003", pool={"pool_scope": "statement"})
    assert "'request', 'transaction'" in message.msg


# -- E008 ------------------------------------------------------------------------------------


def test_e008_djangos_native_pool_option_with_our_engine():
    message = only("dataflow.E008", OPTIONS={"pool": {"min_size": 2, "max_size": 4}})
    assert "OPTIONS['pool'], Django's own PostgreSQL pool" in message.msg
    assert "min_size -> pool_size" in message.hint


def test_e008_not_raised_without_the_option_or_on_the_stock_engine():
    assert ids(OPTIONS={"pool": False}) == []
    stock = {"ENGINE": "django.db.backends.postgresql", "OPTIONS": {"pool": True}}
    assert checks.pool_settings_messages({"default": stock}) == []


# -- E006 / W002 -------------------------------------------------------------------------------


def test_e006_statement_cache_behind_a_transaction_pooler():
    pool = {"behind_transaction_pooler": True, "statement_cache_size": 10}
    message = only("dataflow.E006", pool=pool, DISABLE_SERVER_SIDE_CURSORS=True)
    assert "statement_cache_size']=10" in message.msg


def test_e006_prepare_threshold_behind_a_transaction_pooler():
    message = only(
        "dataflow.E006",
        pool={"behind_transaction_pooler": True},
        OPTIONS={"prepare_threshold": 0},
        DISABLE_SERVER_SIDE_CURSORS=True,
    )
    assert "OPTIONS['prepare_threshold']=0" in message.msg


def test_w002_server_side_cursors_behind_a_transaction_pooler():
    message = only("dataflow.W002", pool={"behind_transaction_pooler": True})
    assert message.level == django_checks.WARNING
    assert "DISABLE_SERVER_SIDE_CURSORS" in message.hint


def test_e006_and_w002_not_raised_for_a_correct_pooler_entry_or_without_a_pooler():
    pooler = {"behind_transaction_pooler": True}
    assert ids(pool=pooler, DISABLE_SERVER_SIDE_CURSORS=True) == []
    assert ids(pool={"behind_transaction_pooler": False}, OPTIONS={"prepare_threshold": 0}) == []


# -- W001 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"server_side_binding": True}, {"prepare_threshold": 5}],
)
def test_w001_a_statement_cache_django_never_fills(options):
    message = only("dataflow.W001", pool={"statement_cache_size": 100}, OPTIONS=options)
    assert message.level == django_checks.WARNING


def test_w001_not_raised_with_server_side_binding_or_without_a_cache():
    options = {"server_side_binding": True, "prepare_threshold": 5}
    assert ids(pool={"statement_cache_size": 100}, OPTIONS=options) == []
    assert ids(pool={"statement_cache_size": 0}) == []


# -- E007 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["many", 0, -2, 2.5, True])
def test_e007_a_wrong_worker_process_setting(settings, value):
    settings.DATAFLOW_WORKER_PROCESSES = value
    [message] = checks.check_worker_processes()
    assert message.id == "dataflow.E007"
    assert f"settings.DATAFLOW_WORKER_PROCESSES must be a whole number >= 1, not {value!r}" in (
        message.msg
    )


def test_e007_a_wrong_web_concurrency(settings, monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "auto")
    [message] = checks.check_worker_processes()
    assert message.id == "dataflow.E007"
    assert "the WEB_CONCURRENCY environment variable must be a whole number" in message.msg


def test_e007_not_raised_for_a_count_or_when_nothing_is_set(settings, monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert checks.check_worker_processes() == []
    settings.DATAFLOW_WORKER_PROCESSES = 4
    assert checks.check_worker_processes() == []


def test_worker_processes_come_from_the_setting_then_web_concurrency_then_one(
    settings, monkeypatch
):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert conf.worker_processes()[0] == 1
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert conf.worker_processes() == (3, "the WEB_CONCURRENCY environment variable")
    settings.DATAFLOW_WORKER_PROCESSES = 8
    assert conf.worker_processes() == (8, "settings.DATAFLOW_WORKER_PROCESSES")


# -- wiring ------------------------------------------------------------------------------------


def test_the_checks_are_registered_under_the_dataflow_tag():
    registered = {
        check.__name__: set(check.tags) for check in django_checks.registry.registry.get_checks()
    }
    assert registered["check_pool_settings"] == {"dataflow"}
    assert registered["check_worker_processes"] == {"dataflow"}
    assert registered["check_server_limits"] == {"dataflow", "database"}


def test_the_registered_checks_report_nothing_for_the_test_settings():
    assert django_checks.run_checks(tags=["dataflow"]) == []


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_the_registered_checks_read_settings_databases():
    databases = {"default": entry("sqlite", {"pool_sise": 1}), "b": entry(CONN_MAX_AGE=5)}
    with override_settings(DATABASES=databases):
        found = django_checks.run_checks(tags=["dataflow"])
        with pytest.raises(ImproperlyConfigured, match="unknown option 'pool_sise'"):
            validate_pooled_databases()
    assert sorted(message.id for message in found) == ["dataflow.E002", "dataflow.E005"]


def test_database_checks_do_nothing_without_databases():
    assert server_checks.check_server_limits(databases=None) == []


# -- docs ----------------------------------------------------------------------------------------


def test_every_check_id_is_documented_with_a_fix():
    text = (DOCS / "checks.md").read_text()
    used = set(checks.PROBLEM_IDS.values()) | {
        checks.WORKER_SETTING_ID,
        server_checks.RECYCLE_ID,
        server_checks.BUDGET_ID,
        checks.MONITORING_SETTING_ID,
        checks.IGNORED_POOL_ID,
        checks.STATS_DIR_ID,
        checks.OPENTELEMETRY_ID,
    }
    documented = set(re.findall(r"^## (dataflow\.[EWI]\d{3}) ", text, flags=re.MULTILINE))
    assert documented == used
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        assert "**Fix:**" in section, section.splitlines()[0]


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_the_options_table_lists_every_option_with_its_defaults():
    rows = {}
    for line in (DOCS / "configuration.md").read_text().splitlines():
        found = re.match(r"\| `(\w+)`", line)
        if found and found.group(1) in ALL_OPTIONS:
            rows[found.group(1)] = [cell.strip() for cell in line.strip("|").split("|")]
    assert set(rows) == set(ALL_OPTIONS)
    for name, option in ALL_OPTIONS.items():
        cells = rows[name][2:5]
        expected = [
            _shown(option.defaults[vendor]) if option.applies_to(vendor) else "—"
            for vendor in ("postgresql", "mysql", "sqlite")
        ]
        assert cells == expected, name
        assert ("connection setting" in rows[name][0]) == (name in CONNECTION_SETTINGS)


def test_w006_a_statistics_directory_that_would_be_refused(settings, tmp_path):
    loose = tmp_path / "stats"
    loose.mkdir()
    loose.chmod(0o755)
    settings.DATAFLOW_STATS_DIR = str(loose)

    messages = checks.check_stats_dir()

    assert [message.id for message in messages] == ["dataflow.W006"]
    assert "mode 0755" in messages[0].msg
    assert oct(loose.stat().st_mode & 0o7777) == "0o755"  # the check changes nothing


def test_w006_not_raised_for_a_private_or_missing_directory_or_without_publishing(
    settings, tmp_path
):
    settings.DATAFLOW_STATS_DIR = str(tmp_path / "not-yet")
    assert checks.check_stats_dir() == []
    assert not (tmp_path / "not-yet").exists()
    settings.DATAFLOW_STATS_DIR = str(tmp_path)
    assert checks.check_stats_dir() == []
    tmp_path.chmod(0o755)
    settings.DATAFLOW_STATS_PUBLISH = False
    assert checks.check_stats_dir() == []
