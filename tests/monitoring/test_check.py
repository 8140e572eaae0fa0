"""``pool_stats --check``: each exit status, judged from real worker processes."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

HEALTHY, UNHEALTHY, USAGE = 0, 1, 2
# Only the rule under test may fire.
ONLY_USAGE = ("--max-wait-queue", "1000", "--max-wait-time", "1000")
ONLY_QUEUE = ("--max-usage", "1000", "--max-wait-time", "1000")
ONLY_WAIT_TIME = ("--max-usage", "1000", "--max-wait-queue", "1000")


def test_check_passes_when_every_pool_is_under_the_thresholds(spawn_worker, pool_stats):
    spawn_worker(requests=5, hold=1)
    spawn_worker(requests=2)

    result = pool_stats("--check")

    assert result.returncode == HEALTHY, result.stderr
    assert result.stdout.startswith("OK: default: 1 of 8 in use, 0 waiting, 2 processes")


def test_check_fails_when_one_worker_uses_more_than_80_percent(spawn_worker, pool_stats):
    busy = spawn_worker(hold=4)  # 4 of pool_size 4
    spawn_worker()  # an idle worker does not hide it

    result = pool_stats("--check", *ONLY_USAGE)

    assert result.returncode == UNHEALTHY
    assert f"pool usage of 'default' in process {busy.pid} is 100%" in result.stdout
    assert "UNHEALTHY" in result.stderr


def test_check_fails_when_more_than_5_requests_wait(spawn_worker, pool_stats):
    exhausted = spawn_worker(hold=6, wait=6)  # 4 + 2 overflow out, 6 waiting

    result = pool_stats("--check", *ONLY_QUEUE)

    assert result.returncode == UNHEALTHY
    assert f"6 requests wait for a connection of 'default' in process {exhausted.pid}" in (
        result.stdout
    )


def test_check_fails_after_a_checkout_waited_longer_than_a_second(spawn_worker, pool_stats):
    worker = spawn_worker(hold=6, wait=1)
    time.sleep(1.2)
    worker.send("release 1")  # the waiter gets a connection after ~1.2 s
    worker.send("publish", expect="published")

    result = pool_stats("--check", *ONLY_WAIT_TIME, "--format", "json")

    assert result.returncode == UNHEALTHY
    stats = {p["pid"]: p["stats"] for p in _per_process(result)}[worker.pid]
    assert stats["wait_queue"] == 0, "nobody waits now: the recent wait must be remembered"
    assert stats["wait_time_max"] >= 1.2
    assert "waited 1." in result.stdout


def test_check_thresholds_can_be_raised_on_the_command_line(spawn_worker, pool_stats):
    spawn_worker(hold=4)

    assert pool_stats("--check").returncode == UNHEALTHY
    assert pool_stats("--check", "--max-usage", "1.0").returncode == HEALTHY


def test_check_without_any_published_pool_exits_2_and_says_why(pool_stats):
    result = pool_stats("--check")

    assert result.returncode == USAGE
    assert "No process has published pool statistics" in result.stdout


def test_an_unknown_alias_is_a_usage_error(pool_stats):
    result = pool_stats("--check", "--database", "nope")

    assert result.returncode == USAGE
    assert "There is no database alias 'nope'" in result.stderr


def test_check_with_prometheus_output_keeps_the_exposition_parseable(spawn_worker, pool_stats):
    """`pool_stats --check --format prometheus > pools.prom` (a node_exporter textfile):
    the verdict goes to stderr, the exit status says it too."""
    from prometheus_client.parser import text_string_to_metric_families

    spawn_worker(hold=4)  # 4 of pool_size 4: unhealthy
    unhealthy = pool_stats("--check", "--format", "prometheus", *ONLY_USAGE)
    assert unhealthy.returncode == UNHEALTHY
    assert "UNHEALTHY" in unhealthy.stderr
    names = {family.name for family in text_string_to_metric_families(unhealthy.stdout)}
    assert "django_dataflow_processes" in names

    healthy = pool_stats("--check", "--format", "prometheus", "--max-usage", "1000")
    assert healthy.returncode == HEALTHY, healthy.stderr
    assert healthy.stderr.startswith("OK: ")
    assert list(text_string_to_metric_families(healthy.stdout))


def test_a_bad_option_value_is_a_usage_error(pool_stats):
    assert pool_stats("--format", "xml").returncode == USAGE
    assert pool_stats("--watch", "0").returncode == USAGE


def _per_process(result):
    import json

    return json.loads(result.stdout)["aliases"]["default"]["per_process"]
