"""The system checks of DATAFLOW_ROUTING and of the router's installation."""

from __future__ import annotations

from django.test import override_settings

from django_dataflow.checks.routing import check_routing, routing_warnings
from django_dataflow.routing.config import parse


def ids(messages):
    return sorted(message.id for message in messages)


def test_the_test_settings_pass_the_checks():
    assert check_routing() == []


def test_every_problem_is_reported_at_once_with_its_id():
    routing = {
        "default": {"replicas": ["replica1", "replica1"], "cooldwon": 3},
        "ghost": {},
    }
    with override_settings(DATAFLOW_ROUTING=routing):
        messages = check_routing()
    assert ids(messages) == ["dataflow.E102", "dataflow.E103", "dataflow.E104"]
    assert all(message.is_serious() for message in messages if ".E" in message.id)
    unknown_key = next(m for m in messages if m.id == "dataflow.E102")
    assert "Did you mean 'cooldown'?" in unknown_key.msg


def test_a_setting_without_the_router_is_reported():
    with override_settings(DATABASE_ROUTERS=[]):
        assert ids(check_routing()) == ["dataflow.W101"]


def test_the_router_without_the_setting_is_reported():
    with override_settings(DATAFLOW_ROUTING=None):
        assert ids(check_routing()) == ["dataflow.W101"]


def test_the_router_may_be_listed_as_an_instance():
    from django_dataflow.routing.router import DataFlowRouter

    with override_settings(DATABASE_ROUTERS=[DataFlowRouter()]):
        assert check_routing() == []


def test_the_check_is_registered_under_the_dataflow_tag():
    from django.core.checks.registry import registry

    assert check_routing in registry.get_checks()
    assert list(check_routing.tags) == ["dataflow"]


def test_warnings_for_a_missing_test_mirror_timeout_or_claim():
    databases = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
        "r": {"ENGINE": "django.db.backends.postgresql", "NAME": "x"},
        "events": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    }
    config, errors = parse({"default": {"replicas": ["r"]}, "events": {}}, databases)
    assert errors == []  # warnings do not stop the router
    assert ids(routing_warnings(config, databases)) == [
        "dataflow.W102",
        "dataflow.W103",
        "dataflow.W104",
    ]


def test_warnings_are_reported_by_the_check():
    routing = {"default": {"replicas": ["replica1"]}, "events": {}}
    with override_settings(DATAFLOW_ROUTING=routing):
        assert ids(check_routing()) == ["dataflow.W104"]
