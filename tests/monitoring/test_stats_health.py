"""The guide's health rules, per process and alias, and their thresholds."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_dataflow import conf
from django_dataflow.monitoring import health
from django_dataflow.monitoring.aggregate import collect
from tests.monitoring.factories import pool_entry, snapshot, write


def problems(tmp_path, thresholds=None, **values):
    write(tmp_path, snapshot({"default": pool_entry(**values)}))
    report = collect(directory=tmp_path, include_self=False)
    return health.evaluate(report, thresholds or conf.check_thresholds())


def test_a_pool_under_every_threshold_is_healthy(tmp_path):
    assert problems(tmp_path, checked_out=3, wait_queue=5, maxwait=0.9) == []


def test_usage_above_80_percent_is_a_problem(tmp_path):
    (problem,) = problems(tmp_path, checked_out=4)
    assert problem.rule == "usage" and problem.value == 1.0
    assert "4 of pool_size 4" in problem.message


def test_more_than_5_waiting_is_a_problem(tmp_path):
    (problem,) = problems(tmp_path, wait_queue=6)
    assert problem.rule == "wait_queue" and "6 requests wait" in problem.message


def test_a_recent_slow_wait_is_a_problem_but_an_old_lifetime_maximum_is_not(tmp_path):
    (problem,) = problems(tmp_path / "a", recent_wait_time_max=1.5, wait_time_max=1.5)
    assert problem.rule == "wait_time_max" and problem.value == 1.5
    assert problems(tmp_path / "b", recent_wait_time_max=0.0, wait_time_max=9.0) == []


def test_thresholds_come_from_settings_then_from_overrides(settings):
    settings.DATAFLOW_CHECK_THRESHOLDS = {"usage": 0.95}

    assert conf.check_thresholds() == {"usage": 0.95, "wait_queue": 5, "wait_time_max": 1.0}
    assert conf.check_thresholds(usage=None, wait_queue=10)["wait_queue"] == 10


def test_a_misspelled_threshold_fails_loudly(settings):
    settings.DATAFLOW_CHECK_THRESHOLDS = {"usgae": 0.9}

    with pytest.raises(ImproperlyConfigured, match="unknown key 'usgae'"):
        conf.check_thresholds()
