"""Prometheus exposition: parsed back by prometheus_client, alias labels, counters."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from django_dataflow.monitoring import prometheus, store
from django_dataflow.monitoring.aggregate import collect
from tests.monitoring.factories import dead_pid, pool_entry, snapshot, write


def parse(text: bytes) -> dict:
    return {
        # Every sample also has a vendor label (tested in test_prometheus_histograms.py).
        (
            sample.name,
            tuple(sorted(i for i in sample.labels.items() if i[0] != "vendor")),
        ): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


@pytest.fixture
def directory(tmp_path):
    write(
        tmp_path,
        snapshot(
            {
                "default": pool_entry(
                    checked_out=2,
                    checkouts=10,
                    waits=2,
                    wait_time_avg=0.25,
                    invalidated_by_reason={"recycle": 1},
                ),
                "replica": pool_entry(pool_size=10, checkouts=1),
            }
        ),
    )
    gone = snapshot({"default": pool_entry(checkouts=5)}, pid=dead_pid())
    store.retire(tmp_path, [(write(tmp_path, gone), gone)])
    return tmp_path


def test_every_metric_has_an_alias_label_and_the_text_parses(directory):
    values = parse(prometheus.exposition(collect(directory=directory, include_self=False)))

    assert values[("django_dataflow_pool_size", (("alias", "replica"),))] == 10
    assert values[("django_dataflow_connections", (("alias", "default"), ("state", "active")))] == 2
    assert values[("django_dataflow_checkout_wait_seconds_total", (("alias", "default"),))] == 0.5
    invalidated = (("alias", "default"), ("reason", "recycle"))
    assert values[("django_dataflow_connections_invalidated_total", invalidated)] == 1
    for name, labels in values:
        assert dict(labels).get("alias") in ("default", "replica"), name


def test_counters_include_processes_that_exited(directory):
    values = parse(prometheus.exposition(collect(directory=directory, include_self=False)))

    assert values[("django_dataflow_checkouts_total", (("alias", "default"),))] == 15


def test_the_collector_registers_once_and_reads_every_process_at_scrape_time(directory, settings):
    settings.DATAFLOW_STATS_DIR = str(directory)
    registry = CollectorRegistry()

    assert prometheus.register(registry) is prometheus.register(registry)

    values = parse(generate_latest(registry))
    assert values[("django_dataflow_processes", (("alias", "default"),))] == 1
