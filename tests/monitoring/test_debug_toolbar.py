"""The Django Debug Toolbar's PoolPanel: with the toolbar installed, a request's
checkouts (new / reused / parked, the time getting and holding each), the pool's state,
no connection secrets, and no tracing at all while the toolbar or the panel is off."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import close_old_connections, connections
from django.test import AsyncClient, Client

from django_dataflow.backends import tracing
from tests.monitoring.toolbar import (
    OFF_HEADER,
    panel_content,
    panel_stats,
    toolbar_installed,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client():
    with toolbar_installed("tests.monitoring.toolbar_urls"):
        connections.close_all()  # each alias's first query in a request checks out
        yield Client()
        connections.close_all()


def alias_entry(stats: dict, alias: str = "default") -> dict:
    (entry,) = [entry for entry in stats["aliases"] if entry["alias"] == alias]
    return entry


def test_the_panel_shows_each_checkout_of_the_request(client):
    response = client.get("/two/")
    assert response.status_code == 200
    assert tracing.active == 0
    assert b"tracing: 1" in response.content  # the view ran inside the panel's trace
    stats = panel_stats(response)
    entry = alias_entry(stats)
    assert entry["vendor"] == connections["default"].vendor
    assert entry["checkouts"] == stats["checkouts"] == 2
    assert entry["new"] + entry["reused"] + entry["parked"] == 2
    first, second = entry["list"]
    assert first["how"] in (tracing.NEW, tracing.REUSED)
    assert first["returned_as"] == "returned"  # the view closed it
    # The pool lends the connection it was just given back.
    assert second["how"] == tracing.REUSED
    assert second["connection"] == first["connection"]
    assert second["returned_as"] == "still held"  # until the request ends
    for number in (
        entry["acquire_ms"],
        entry["acquire_max_ms"],
        entry["held_ms"],
        first["acquire_ms"],
        first["held_ms"],
        second["acquire_ms"],
        second["held_ms"],
    ):
        assert isinstance(number, (int, float)) and number >= 0
    assert entry["acquire_max_ms"] == max(first["acquire_ms"], second["acquire_ms"])
    pool = {row["key"]: row["value"] for row in entry["pool"]}
    assert pool["pool_size"] == settings.DATABASES["default"]["POOL"]["pool_size"]
    assert pool["checked_out"] >= 1  # the second checkout, still held
    # The toolbar's sidebar shows the panel's subtitle.
    assert "2 checkouts" in response.content.decode()


def test_the_next_request_takes_the_parked_connection_back(client):
    client.get("/one/")
    # What a server's request_finished does (the test client leaves it out): park it.
    close_old_connections()
    response = client.get("/one/")
    (checkout,) = alias_entry(panel_stats(response))["list"]
    assert checkout["how"] == tracing.PARKED
    assert checkout["acquire_ms"] >= 0


def test_the_rendered_panel_shows_the_alias_and_no_secrets(client):
    response = client.get("/two/")
    content = panel_content(client, response)
    assert "default" in content
    assert "reused" in content
    assert "The pool when the response was ready" in content
    assert "password" not in content.lower()
    entry = settings.DATABASES["default"]
    for secret in (entry.get("PASSWORD"), entry.get("HOST"), entry.get("USER")):
        if secret and secret not in ("postgres",):  # (part of the vendor "postgresql")
            assert secret not in content
    assert str(entry["NAME"]) not in content
    assert tracing.active == 0


def test_no_trace_while_the_toolbar_is_off(client):
    response = client.get("/one/", headers={OFF_HEADER: "off"})
    assert b"tracing: 0" in response.content
    assert b"djDebug" not in response.content
    assert tracing.active == 0


def test_no_trace_while_the_panel_is_toggled_off(client):
    client.cookies["djdtPoolPanel"] = "off"
    response = client.get("/one/")
    assert b"tracing: 0" in response.content
    assert tracing.active == 0


def test_an_async_view_is_traced_too():
    with toolbar_installed("tests.monitoring.toolbar_urls"):
        response = async_to_sync(AsyncClient().get)("/async/one/")
    connections.close_all()
    assert b"tracing: 1" in response.content
    assert alias_entry(panel_stats(response))["checkouts"] == 1
    assert tracing.active == 0
