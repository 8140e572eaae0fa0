"""Prometheus text from real worker processes, read back by prometheus_client's parser."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db(transaction=True)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        # Every sample also has the vendor label (tested in test_prometheus_histograms.py).
        (
            sample.name,
            tuple(sorted(i for i in sample.labels.items() if i[0] != "vendor")),
        ): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_prometheus_text_covers_both_workers_under_an_alias_label(spawn_worker, pool_stats):
    spawn_worker(requests=4, hold=2)
    spawn_worker(requests=2, hold=1)

    result = pool_stats("--format", "prometheus")

    assert result.returncode == 0, result.stderr
    values = samples(result.stdout)
    alias = (("alias", "default"),)
    assert values[("django_dataflow_processes", alias)] == 2
    assert values[("django_dataflow_pool_size", alias)] == 8
    assert values[("django_dataflow_connections", (("alias", "default"), ("state", "active")))] == 3
    assert values[("django_dataflow_checkouts_total", alias)] >= 4 + 2 + 2 + 1


def test_counters_do_not_go_down_when_a_worker_exits(spawn_worker, pool_stats):
    leaving = spawn_worker(requests=6)
    spawn_worker(requests=1)
    key = ("django_dataflow_checkouts_total", (("alias", "default"),))
    before = samples(pool_stats("--format", "prometheus").stdout)[key]

    leaving.stop()

    after = samples(pool_stats("--format", "prometheus").stdout)[key]
    assert after >= before
