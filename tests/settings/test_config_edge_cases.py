"""Configuration edge cases: secrets in parse errors, non-finite numbers, upper-case option
names. No database needed."""

from __future__ import annotations

import math

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_dataflow.checks.pool import pool_settings_messages
from django_dataflow.settings.dataflow_config import DataFlowConfig

# -- a password with an unencoded / # ? must never reach an error message -------------------


@pytest.mark.parametrize("special", ["/", "#", "?"])
def test_unencoded_special_char_in_password_never_leaks_the_password(special):
    url = f"postgres://app:hunter2{special}tail@db.example.com:5432/app"
    with pytest.raises(ImproperlyConfigured) as raised:
        DataFlowConfig(database_url=url)
    assert "hunter2" not in str(raised.value)


def test_a_bad_port_is_a_configuration_error_naming_the_source():
    with pytest.raises(ImproperlyConfigured, match="database_url"):
        DataFlowConfig(database_url="postgres://app:secret@db.example.com:54x2/app")


# -- repr masks a password holding a raw '@' -----------------------------


def test_repr_masks_all_of_a_password_that_contains_a_raw_at_sign():
    config = DataFlowConfig(database_url="postgres://app:p@ssw0rd@db.example.com/app")
    assert config.as_database()["PASSWORD"] == "p@ssw0rd"  # the URL *is* accepted
    assert "ssw0rd" not in repr(config)


# -- seconds must be finite ---------------------------------------------------


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_pool_timeout_must_be_a_finite_number(value):
    with pytest.raises(ImproperlyConfigured, match="pool_timeout"):
        DataFlowConfig(database_url="postgres://u@h/db", pool_timeout=value)


@pytest.mark.parametrize("text", ["inf", "nan"])
def test_pool_timeout_in_the_url_must_be_finite(text):
    with pytest.raises(ImproperlyConfigured, match="pool_timeout"):
        DataFlowConfig(database_url=f"postgres://u@h/db?pool_timeout={text}")


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_e003_for_a_non_finite_pool_timeout_in_pool(value):
    databases = {
        "default": {
            "ENGINE": "django_dataflow.backends.postgresql",
            "NAME": "db",
            "POOL": {"pool_timeout": value},
        }
    }
    ids = [message.id for message in pool_settings_messages(databases)]
    assert ids == ["dataflow.E003"]


# -- upper-case option names get the nearest-name hint, never reach the driver ---------


def test_e002_suggests_the_option_for_an_upper_case_pool_key():
    databases = {
        "default": {
            "ENGINE": "django_dataflow.backends.postgresql",
            "NAME": "db",
            "POOL": {"POOL_SIZE": 20},
        }
    }
    (message,) = pool_settings_messages(databases)
    assert message.id == "dataflow.E002"
    assert "Did you mean 'pool_size'?" in message.hint


def test_an_upper_case_pool_option_in_the_url_is_not_passed_to_the_driver():
    with pytest.raises(ImproperlyConfigured, match="pool_size"):
        DataFlowConfig(database_url="postgres://u:p@h/db?POOL_SIZE=50")
