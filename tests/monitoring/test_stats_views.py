"""The stats views refuse anyone but staff or a token holder; the health view is plain."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.test import RequestFactory

from django_dataflow.monitoring import views
from tests.monitoring.factories import pool_entry, snapshot, write


@pytest.fixture
def stats_dir(settings, tmp_path):
    settings.DATAFLOW_STATS_DIR = str(tmp_path)
    return tmp_path


def get(view, user=None, **headers):
    request = RequestFactory().get("/", headers=headers)
    request.user = user or AnonymousUser()
    return view(request)


def test_anonymous_users_are_refused(stats_dir):
    response = get(views.pool_stats_view)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_logged_in_users_who_are_not_staff_are_refused(stats_dir):
    assert get(views.pool_stats_view, User(username="u", is_staff=False)).status_code == 403
    assert get(views.metrics_view, User(username="u", is_staff=False)).status_code == 403


def test_staff_users_get_every_processs_pools_as_json(stats_dir):
    write(stats_dir, snapshot({"default": pool_entry(checked_out=1)}))

    response = get(views.pool_stats_view, User(username="s", is_staff=True))

    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["aliases"]["default"]["stats"]["checked_out"] == 1


def test_the_metrics_token_opens_the_prometheus_view(settings, stats_dir):
    pytest.importorskip("prometheus_client")
    settings.DATAFLOW_METRICS_TOKEN = "t0ken"
    write(stats_dir, snapshot({"default": pool_entry()}))

    assert get(views.metrics_view, Authorization="Bearer wrong").status_code == 401
    response = get(views.metrics_view, Authorization="Bearer t0ken")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b'django_dataflow_pool_size{alias="default",vendor="postgresql"} 4.0' in response.content


def test_prometheus_text_is_served_when_asked_for(stats_dir):
    pytest.importorskip("prometheus_client")
    staff = User(username="s", is_staff=True)

    assert b"# TYPE" in get(views.pool_stats_view, staff, Accept="text/plain").content
    assert get(views.pool_stats_view, staff, Accept="application/json")["Content-Type"] == (
        "application/json"
    )


def test_the_health_view_says_ok_or_what_is_wrong(stats_dir):
    assert json.loads(get(views.health_view).content) == {
        "status": "ok",
        "problems": [],
        "warnings": [],
        "processes": 0,
    }
    write(stats_dir, snapshot({"default": pool_entry(checked_out=4)}))

    busy = get(views.health_view)

    # A busy pool is a warning: a readiness probe must not take a busy instance out.
    assert busy.status_code == 200
    body = json.loads(busy.content)
    assert body["status"] == "warning" and "pool usage" in body["warnings"][0]
    write(stats_dir, snapshot({"default": pool_entry(recent_timeouts=3)}))

    failing = get(views.health_view)

    assert failing.status_code == 503
    body = json.loads(failing.content)
    assert body["status"] == "unhealthy" and "3 checkouts" in body["problems"][0]


def test_the_django_health_check_plugin_warns_of_a_busy_pool(stats_dir):
    pytest.importorskip("health_check")
    from health_check.exceptions import ServiceUnavailable, ServiceWarning

    from django_dataflow.monitoring.healthcheck import PoolHealth

    PoolHealth().run()  # nothing published: healthy
    write(stats_dir, snapshot({"default": pool_entry(wait_queue=9, checked_out=4)}))

    with pytest.raises(ServiceWarning, match="9 requests wait") as busy:
        PoolHealth(alias="default").run()
    assert not isinstance(busy.value, ServiceUnavailable)
    PoolHealth(alias="replica").run()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"recent_timeouts": 2}, "2 checkouts of 'default'"),
        ({"recent_connection_errors": 5}, "5 connection attempts .* no connection open"),
    ],
)
def test_the_django_health_check_plugin_fails_on_what_stops_service(stats_dir, values, message):
    pytest.importorskip("health_check")
    from health_check.exceptions import ServiceUnavailable

    from django_dataflow.monitoring.healthcheck import PoolHealth

    write(stats_dir, snapshot({"default": pool_entry(**values)}))

    with pytest.raises(ServiceUnavailable, match=message):
        PoolHealth().run()


def test_the_health_view_answers_head(stats_dir):
    request = RequestFactory().head("/dataflow/health/")
    request.user = AnonymousUser()

    assert views.health_view(request).status_code == 200
