"""Parsing DATAFLOW_ROUTING: what a valid setting becomes, and every problem reported."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_dataflow.routing.config import get_config, parse

ROUTING = {
    "default": {"replicas": {"replica1": 3, "replica2": 1}, "analytics": "analytics"},
}


def ids(problems):
    return sorted(problem.id for problem in problems)


def errors(raw):
    return ids(parse(raw)[1])


def test_a_valid_setting_becomes_sets_with_weights_and_defaults():
    config, problems = parse(ROUTING)
    assert problems == []
    dbset = config.sets["default"]
    assert dbset.replicas == ("replica1", "replica2")
    assert dbset.weights == (3.0, 1.0)
    assert dbset.analytics == "analytics"
    assert (dbset.pin_seconds, dbset.max_lag, dbset.cooldown) == (5.0, None, 30.0)


def test_a_list_of_replicas_means_equal_weights():
    config, _ = parse({"default": {"replicas": ["replica1", "replica2"]}})
    assert config.sets["default"].weights == (1.0, 1.0)


def test_models_go_to_the_set_that_claims_them_and_the_rest_to_default():
    from tests.routing.routingapp.models import Article, Event, PageView

    config, problems = parse(
        {
            "default": {"analytics": "analytics", "analytics_models": ["routingapp.PageView"]},
            "events": {"replicas": ["events_replica"], "models": ["routingapp.Event"]},
        }
    )
    assert problems == []
    assert config.route(Article).dbset.primary == "default"
    assert config.route(Event).dbset.primary == "events"
    assert config.route(PageView) == (config.sets["default"], True)


def test_without_a_default_set_unclaimed_models_are_not_routed():
    from tests.routing.routingapp.models import Article

    config, _ = parse({"events": {"replicas": ["events_replica"], "apps": ["routingapp"]}})
    assert config.route(Article).dbset.primary == "events"
    config, _ = parse({"events": {"models": ["routingapp.Event"]}})
    assert config.route(Article) is None


def test_the_setting_must_be_a_dict_of_dicts():
    assert errors(["default"]) == ["E101"]
    assert errors({"default": ["replica1"]}) == ["E101"]


def test_an_unknown_key_is_reported_with_the_nearest_valid_one():
    _config, problems = parse({"default": {"replica": ["replica1"]}})
    assert ids(problems) == ["E102"]
    assert "Did you mean 'replicas'?" in problems[0].msg


def test_an_alias_missing_from_databases_is_reported():
    _config, problems = parse({"default": {"replicas": ["replika1"]}})
    assert ids(problems) == ["E103"]
    assert "Did you mean 'replica1'?" in problems[0].msg
    assert errors({"nowhere": {}}) == ["E103"]
    assert errors({"default": {"analytics": "nowhere"}}) == ["E103"]


def test_a_replica_listed_twice_is_reported():
    assert errors({"default": {"replicas": ["replica1", "replica1"]}}) == ["E104"]
    both = {
        "default": {"replicas": ["replica1"]},
        "events": {"replicas": ["replica1"], "models": ["routingapp.Event"]},
    }
    assert errors(both) == ["E104"]


def test_an_alias_cannot_be_a_primary_and_a_replica():
    raw = {
        "default": {"replicas": ["events"]},
        "events": {"models": ["routingapp.Event"]},
    }
    assert errors(raw) == ["E104"]
    assert errors({"default": {"analytics": "default"}}) == ["E104"]


def test_weights_must_be_numbers_and_not_all_zero():
    assert errors({"default": {"replicas": {"replica1": -1}}}) == ["E105"]
    assert errors({"default": {"replicas": {"replica1": "2"}}}) == ["E105"]
    assert errors({"default": {"replicas": {"replica1": 0}}}) == ["E105"]
    assert errors({"default": {"replicas": "replica1"}}) == ["E105"]
    config, _ = parse({"default": {"replicas": {"replica1": 1, "replica2": 0}}})
    assert config.sets["default"].weights == (1.0, 0.0)


def test_option_values_are_checked():
    assert errors({"default": {"cooldown": 0}}) == ["E106"]
    assert errors({"default": {"max_lag": "5"}}) == ["E106"]
    assert errors({"default": {"pin_seconds": -1}}) == ["E106"]
    assert errors({"default": {"apps": "routingapp"}}) == ["E106"]
    assert errors({"default": {"analytics": 3}}) == ["E106"]
    config, _ = parse({"default": {"max_lag": None, "pin_seconds": 0}})
    assert config.sets["default"].pin_seconds == 0.0


def test_unknown_apps_and_models_are_reported():
    assert errors({"default": {"analytics": "analytics", "analytics_apps": ["nope"]}}) == ["E107"]
    assert errors({"default": {"models": ["routingapp.Nope"]}}) == ["E107"]


def test_an_app_or_model_claimed_twice_is_reported():
    raw = {
        "default": {"models": ["routingapp.Event"]},
        "events": {"models": ["routingapp.event"]},
    }
    assert errors(raw) == ["E108"]


def test_analytics_models_need_an_analytics_database_that_is_not_a_replica():
    assert errors({"default": {"analytics_models": ["routingapp.PageView"]}}) == ["E109"]
    raw = {
        "default": {
            "replicas": ["replica1"],
            "analytics": "replica1",
            "analytics_models": ["routingapp.PageView"],
        }
    }
    assert errors(raw) == ["E109"]


def test_a_replica_may_double_as_a_mirror_analytics_database():
    config, problems = parse({"default": {"replicas": ["replica1"], "analytics": "replica1"}})
    assert problems == []
    assert config.role_of("replica1")[0] == "replica"


def test_get_config_raises_with_the_check_ids_and_follows_override_settings():
    assert get_config().sets["default"].replicas == ("replica1", "replica2")
    with (
        override_settings(DATAFLOW_ROUTING={"default": {"replicas": ["nope"]}}),
        pytest.raises(ImproperlyConfigured, match=r"dataflow\.E103"),
    ):
        get_config()
    with override_settings(DATAFLOW_ROUTING={"default": {"replicas": ["replica2"]}}):
        assert get_config().sets["default"].replicas == ("replica2",)
    with override_settings(DATAFLOW_ROUTING=None):
        assert get_config() is None
    assert get_config().sets["default"].replicas == ("replica1", "replica2")
