"""Pooled PostgreSQL connections name themselves, unless the user named them."""

from __future__ import annotations

from django_dataflow.backends.postgresql.server import application_name, identify_connection

PARAMS = {"dbname": "app", "user": "web", "password": "secret"}


def test_the_default_name_is_prefix_alias_and_pid():
    named = identify_connection("postgresql", "default", PARAMS, pid=1234)

    assert named["application_name"] == "django-dataflow:default:1234"
    assert named["password"] == "secret" and "application_name" not in PARAMS


def test_a_name_the_user_chose_is_kept(monkeypatch):
    own = {**PARAMS, "application_name": "billing"}
    assert identify_connection("postgresql", "default", own) is own
    options = {**PARAMS, "options": "-c application_name=billing"}
    assert identify_connection("postgresql", "default", options) is options
    monkeypatch.setenv("PGAPPNAME", "billing")
    assert identify_connection("postgresql", "default", PARAMS) is PARAMS


def test_the_prefix_is_configurable_and_none_turns_naming_off(settings):
    settings.DATAFLOW_APPLICATION_NAME_PREFIX = "shop"
    assert identify_connection("postgresql", "replica", PARAMS, pid=7)["application_name"] == (
        "shop:replica:7"
    )
    settings.DATAFLOW_APPLICATION_NAME_PREFIX = None
    assert identify_connection("postgresql", "replica", PARAMS) is PARAMS


def test_long_names_fit_postgresqls_63_bytes_and_keep_the_whole_pid():
    name = application_name("a-rather-long-project-prefix", "analytics-" * 6, 4194304)

    assert len(name.encode()) <= 63
    assert name.endswith(":4194304")
    assert name.startswith("a-rather-long-project-prefix:analytics")


def test_mysql_and_sqlite_parameters_are_left_alone():
    assert identify_connection("mysql", "default", PARAMS) is PARAMS
    assert identify_connection("sqlite", "default", PARAMS) is PARAMS
