"""dataflow.W004 groups entries by server. No database needed."""

from __future__ import annotations

from django_dataflow.checks.server import _server_groups
from django_dataflow.settings.dataflow_config import DataFlowConfig


def test_w004_counts_an_entry_with_the_default_port_and_one_with_5432_as_one_server():
    # Two DATABASE_URLs for the same server, one with the port spelled out. Both pools
    # draw on one max_connections, so dataflow.W004 must add them up.
    primary = DataFlowConfig(database_url="postgres://app@db.internal/app").as_database()
    jobs = DataFlowConfig(database_url="postgres://app@db.internal:5432/jobs").as_database()
    entries = {
        "default": ("postgresql", primary, primary["POOL"]),
        "jobs": ("postgresql", jobs, jobs["POOL"]),
    }
    groups = list(_server_groups(entries).values())
    assert groups == [["default", "jobs"]]
