"""Routing tests: a PostgreSQL primary and its streaming hot standby (`bin/replica-up`).

    pytest --ds=tests.dbsettings.routing tests/routing

Two sets: "default" with two replica aliases (weights 3 and 1; both lead to the one
standby, so weights can be counted per alias) and an analytics database of its own, and
"events" with its own replica. Replicas are test mirrors of their primary: the test
databases are created on the primary and reach the standby by replication.
"""

import os

from tests.dbsettings.base import *  # noqa: F403
from tests.dbsettings.base import INSTALLED_APPS, postgresql_settings

DATABASE_VENDOR = "postgresql"
REPLICA_PORT = os.environ.get("POSTGRES_REPLICA_PORT", "5433")
# Test databases of their own, so this run does not share test_test with the backend tests.
SUFFIX = os.environ.get("ROUTING_TEST_DB_SUFFIX", "")


def replica_of(primary, port=REPLICA_PORT):
    return postgresql_settings(
        PORT=port,
        TEST={"MIRROR": primary},
        OPTIONS={"connect_timeout": 2},
    )


DATABASES = {
    "default": postgresql_settings(TEST={"NAME": f"test_dataflow_routing{SUFFIX}"}),
    "replica1": replica_of("default"),
    "replica2": replica_of("default"),
    "analytics": postgresql_settings(TEST={"NAME": f"test_dataflow_analytics{SUFFIX}"}),
    "events": postgresql_settings(TEST={"NAME": f"test_dataflow_events{SUFFIX}"}),
    "events_replica": replica_of("events"),
    # Nothing listens on port 1: a replica that is down, for the failover tests.
    "replica_down": replica_of("default", port="1"),
}
DATABASE_ROUTERS = ["django_dataflow.routers.DataFlowRouter"]
DATAFLOW_ROUTING = {
    "default": {
        "replicas": {"replica1": 3, "replica2": 1},
        "analytics": "analytics",
        "analytics_models": ["routingapp.PageView"],
    },
    "events": {
        "replicas": ["events_replica"],
        "models": ["routingapp.Event"],
    },
}
INSTALLED_APPS = [*INSTALLED_APPS, "tests.routing.routingapp"]
MIDDLEWARE = ["django_dataflow.middleware.ReadYourWritesMiddleware"]
ROOT_URLCONF = "tests.routing.urls"
