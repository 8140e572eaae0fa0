"""Every bad setting is reported, never a traceback: numbers too large for a float, all
of an entry's problems at once; secrets in a URL's query masked; percent-encoding read
in either case."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_dataflow import DataFlowConfig, conf
from django_dataflow.checks import pool as checks
from django_dataflow.settings.database_url import parse_database_url
from django_dataflow.settings.validation import resolve_pool_options

PG = "django_dataflow.backends.postgresql"


def pool_ids(pool: dict) -> list[str]:
    databases = {"default": {"ENGINE": PG, "NAME": "x", "POOL": pool}}
    return [message.id for message in checks.pool_settings_messages(databases)]


@pytest.mark.parametrize(
    "pool",
    [
        {"pool_size": 10**400},
        {"pool_size": 1e300},
        {"pool_size": -(10**400)},
        {"pool_max_overflow": 10**6},
        {"pool_timeout": 10**400},
        {"pool_recycle": 10**400},
    ],
)
def test_huge_numbers_are_e003_not_a_crash(pool):
    assert pool_ids(pool) == ["dataflow.E003"]


def test_a_huge_pool_size_is_refused_by_the_config_and_the_url():
    with pytest.raises(ImproperlyConfigured, match="at most 100000"):
        DataFlowConfig(database_url="postgres://u@h/db", pool_size=10**400)
    with pytest.raises(ImproperlyConfigured, match=r"pool_size.*at most 100000"):
        DataFlowConfig(database_url="postgres://u@h/db?pool_size=1" + "0" * 400)


@pytest.mark.parametrize("value", [10**400, -(10**400), 1e300])
def test_a_huge_stats_interval_is_e011_not_a_crash(value):
    with override_settings(DATAFLOW_STATS_INTERVAL=value):
        messages = checks.check_monitoring_settings()
        with pytest.raises(ImproperlyConfigured, match="DATAFLOW_STATS_INTERVAL"):
            conf.publish_interval()
    assert [message.id for message in messages] == ["dataflow.E011"]
    assert len(messages[0].msg) < 200


def test_a_huge_threshold_is_e011():
    with override_settings(DATAFLOW_CHECK_THRESHOLDS={"wait_queue": 10**400}):
        assert [m.id for m in checks.check_monitoring_settings()] == ["dataflow.E011"]


def test_a_connection_attempt_names_every_problem_and_the_check_command():
    entry = {"ENGINE": PG, "NAME": "x", "POOL": {"POOL_SIZE": 5, "pool_timeout": -1}}

    with pytest.raises(ImproperlyConfigured) as error:
        resolve_pool_options("default", "postgresql", entry)

    message = str(error.value)
    assert "'POOL_SIZE'" in message and "'pool_timeout'" in message
    assert "manage.py check --tag dataflow" in message


@pytest.mark.parametrize(
    ("query", "secret"),
    [
        ("password=pw2", "pw2"),
        ("sslpassword=pw3", "pw3"),
        ("sslmode=require&passwd=pw4", "pw4"),
        ("PASSWORD=pw5&sslmode=require", "pw5"),
    ],
)
def test_the_repr_masks_passwords_in_the_query_string(query, secret):
    config = DataFlowConfig(database_url=f"postgres://u:pw@h/db?{query}")

    assert secret not in repr(config) and "pw@" not in repr(config)
    assert "***" in repr(config)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("postgres://%2fvar%2frun%2fpostgresql/db", "/var/run/postgresql"),
        ("postgres://%2Fvar%2Frun%2Fpostgresql/db", "/var/run/postgresql"),
        ("postgres://u@[fe80::1%25eth0]:5432/db", "fe80::1%eth0"),
    ],
)
def test_the_host_is_percent_decoded_in_either_case(url, host):
    _vendor, entry, _ours = parse_database_url(url)

    assert entry["HOST"] == host
