"""The Debug Toolbar's PoolPanel under DataFlowRouter: each read's decision and its
reason (a replica by weight, kept for the request; the primary for use_primary() and
after a write), and the replica's checkouts beside the primary's."""

from __future__ import annotations

import pytest
from django.db import connections, transaction
from django.test import Client, override_settings

from django_dataflow.backends import tracing
from django_dataflow.routing import explain
from tests.monitoring.toolbar import OFF_HEADER, panel_content, panel_stats, toolbar_installed
from tests.routing.routingapp.models import Article

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
REPLICAS = ("replica1", "replica2")


@pytest.fixture
def client():
    with toolbar_installed(
        "tests.routing.toolbar_urls",
        middleware=("django_dataflow.middleware.ReadYourWritesMiddleware",),
    ):
        connections.close_all()  # each alias's first query in a request checks out
        yield Client()
        connections.close_all()


def test_the_panel_shows_the_router_decisions_of_the_request(client):
    response = client.get("/read-write-read/")
    assert response.status_code == 200
    assert tracing.active == 0
    stats = panel_stats(response)
    decisions = [(d["alias"], d["reason"]) for d in stats["routing"]]
    assert all(d["model"] == "routingapp.Article" for d in stats["routing"])
    reasons = [reason for _alias, reason in decisions]
    by_weight = [alias for alias, reason in decisions if reason == "replica chosen by weight"]
    assert len(by_weight) == 1 and by_weight[0] in REPLICAS
    (kept,) = [d for d in stats["routing"] if "chosen earlier" in d["reason"]]
    assert kept["alias"] == by_weight[0]
    assert ("default", "use_primary()") in decisions
    assert ("default", "read-your-writes: this request wrote to the primary") in decisions
    assert reasons.index("use_primary()") < reasons.index(
        "read-your-writes: this request wrote to the primary"
    )
    aliases = {entry["alias"]: entry for entry in stats["aliases"]}
    assert aliases[by_weight[0]]["checkouts"] >= 1  # the router opened it to check it
    assert aliases[by_weight[0]]["reads_routed"] >= 2
    assert aliases["default"]["checkouts"] >= 1
    assert stats["reads_routed"] == sum(d["count"] for d in stats["routing"]) >= 4
    content = panel_content(client, response)
    assert "Router decisions" in content
    assert "replica chosen by weight" in content
    assert "use_primary()" in content
    assert "password" not in content.lower()


def test_no_decision_is_explained_without_the_toolbar(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a read was traced with the toolbar off")

    monkeypatch.setattr(explain, "traced_read", refuse)
    response = client.get("/read-write-read/", headers={OFF_HEADER: "off"})
    assert response.status_code == 200
    assert tracing.active == 0


def test_the_reasons_for_the_primary():
    decisions = set()
    with tracing.collect() as trace:
        with transaction.atomic():
            Article.objects.filter(title="atomic").exists()
        with override_settings(DATAFLOW_ROUTING={"default": {"replicas": ["replica_down"]}}):
            Article.objects.filter(title="down").exists()
        with override_settings(DATAFLOW_ROUTING={"default": {}}):
            Article.objects.filter(title="alone").exists()
        decisions = {(d["alias"], d["reason"]) for d in trace.routing}
    assert tracing.active == 0
    assert ("default", "inside atomic() on the primary") in decisions
    assert ("default", "the set has no replicas") in decisions
    (down,) = [reason for _alias, reason in decisions if "no usable replica" in reason]
    assert down.startswith("no usable replica: replica_down down (retried in ")
