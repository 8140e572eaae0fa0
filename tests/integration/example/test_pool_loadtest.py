"""``manage.py pool_loadtest`` on the server of this run (bin/test runs this module once
per vendor: PostgreSQL, MariaDB, SQLite)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from django_dataflow.management.loadtest import Progress, percentile, summarize
from django_dataflow.stats import get_pool_stats
from tests.testapp.models import Item

# The test settings' pool is 4 + 2 overflow: more threads than that must wait, and only
# get through if every request gives its connection back.
THREADS = 12
REQUESTS = 60


def loadtest(*args: str, **options: Any) -> dict[str, Any]:
    """Run the command with --json; return its report, with ``checkouts_during_run``
    added for every pool.

    The test's own thread gives its connection back first, as the end of a request would,
    so that every connection checked out afterwards is the command's.
    """
    connections.close_all()
    before = {alias: get_pool_stats(alias)["checkouts"] for alias in connections}
    out = io.StringIO()
    call_command(
        "pool_loadtest",
        *args,
        "--json",
        threads=options.pop("threads", THREADS),
        requests=options.pop("requests", REQUESTS),
        verbosity=0,
        stdout=out,
        **options,
    )
    report = json.loads(out.getvalue())
    for alias, stats in report["pool_stats"].items():
        stats["checkouts_during_run"] = stats["checkouts"] - before[alias]
    return report


@pytest.fixture
def users(db: None) -> None:
    User = get_user_model()
    User.objects.bulk_create(
        User(username=f"user{number:03d}", is_active=number % 4 != 0) for number in range(150)
    )


@pytest.mark.django_db(transaction=True)
class TestQueries:
    def test_default_lists_active_users_like_the_guide(self, users: None, vendor: str) -> None:
        report = loadtest()

        assert report["errors"] == 0
        assert "is_active=True, first 100" in report["work"]
        assert report["requests"] == REQUESTS
        assert report["threads"] == THREADS
        times = report["response_time"]
        assert 0 < times["min"] <= times["p50"] <= times["p95"] <= times["p99"] <= times["max"]
        assert times["min"] <= times["average"] <= times["max"]
        stats = report["pool_stats"]["default"]
        assert stats["vendor"] == vendor
        assert stats["checkouts_during_run"] == REQUESTS

    def test_every_request_returns_its_connection_to_the_pool(self, users: None) -> None:
        report = loadtest()

        stats = report["pool_stats"]["default"]
        # 12 threads shared at most 6 connections: they waited, and none timed out.
        assert stats["timeouts"] == 0
        assert stats["connections_created"] <= 6
        assert report["peak"]["default"]["total"] <= 6
        # The threads closed their connections when they finished.
        assert stats["checked_out"] == 0
        assert stats["checkins"] == stats["checkouts"]

    def test_a_model_with_an_active_field_is_filtered_on_it(self) -> None:
        Item.objects.bulk_create(Item(name=f"item{n}", active=n % 2 == 0) for n in range(20))

        report = loadtest("--model", "testapp.Item", "--limit", "5", requests=10, threads=3)

        assert report["errors"] == 0
        assert "tests.testapp.Item" not in report["work"]
        assert "testapp.Item where active=True, first 5" in report["work"]

    def test_explicit_filters_replace_the_default(self) -> None:
        report = loadtest(
            "--model", "testapp.Item", "--filter", "active=false", "--filter", "name=x", requests=4
        )

        assert report["errors"] == 0
        assert "active=False, name='x'" in report["work"]

    def test_raw_sql_on_a_named_database(self) -> None:
        report = loadtest("--sql", "SELECT 1", "--database", "default", requests=20, threads=4)

        assert report["errors"] == 0
        assert report["database"] == "default"
        assert list(report["pool_stats"]) == ["default"]
        assert report["pool_stats"]["default"]["checkouts_during_run"] == 20

    def test_text_report_has_the_guides_figures(self, users: None) -> None:
        out = io.StringIO()
        call_command("pool_loadtest", threads=4, requests=8, stdout=out)

        text = out.getvalue()
        assert "Average response time:" in text
        assert "p50" in text and "p95" in text and "p99" in text and "max" in text
        assert "Errors:         0" in text
        assert "Pool stats for 'default'" in text
        # Not a terminal: progress comes as plain lines, the last one at 100 %.
        assert "8/8 requests done (100 %)" in text
        assert "\r" not in text


@pytest.mark.django_db(transaction=True)
class TestViews:
    @pytest.fixture(autouse=True)
    def _urls(self, settings: Any) -> None:
        settings.ROOT_URLCONF = "tests.integration.example.urls"
        settings.ALLOWED_HOSTS = ["testserver"]

    def test_url_goes_through_the_wsgi_handler(self) -> None:
        Item.objects.bulk_create(Item(name=f"item{n}") for n in range(10))

        report = loadtest("--url", "/items/")

        assert report["errors"] == 0
        assert report["work"] == "GET /items/ through Django's WSGI handler"
        stats = report["pool_stats"]["default"]
        assert stats["checkouts_during_run"] == REQUESTS
        assert stats["checked_out"] == 0

    def test_failed_requests_are_counted_and_the_exit_status_is_1(self) -> None:
        out = io.StringIO()
        with pytest.raises(CommandError) as raised:
            call_command(
                "pool_loadtest", "--url", "/broken/", "--json", "--requests", "6",
                "--threads", "2", verbosity=0, stdout=out,
            )  # fmt: skip

        assert raised.value.returncode == 1
        assert str(raised.value) == "6 of 6 requests failed."
        report = json.loads(out.getvalue())
        assert report["errors"] == 6
        assert report["error_counts"] == {"HTTP 500 Internal Server Error": 6}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "--threads and --requests must be at least 1."),
        (["--database", "nope"], "Unknown database 'nope'"),
        (["--model", "nope.Nothing"], "Unknown model 'nope.Nothing'"),
        (["--model", "testapp.Item", "--filter", "colour=red"], "has no field 'colour'"),
        (["--model", "testapp.Item", "--filter", "active"], "write it as FIELD=VALUE"),
        (["--sql", "SELECT 1", "--filter", "a=b"], "--filter applies to --model only."),
        (["--limit", "0"], "--limit must be at least 1."),
    ],
)
def test_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(")) as raised:
        call_command("pool_loadtest", *args, stdout=io.StringIO())
    assert raised.value.returncode == 2


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_progress_bar_redrawn_in_place() -> None:
    terminal = FakeTerminal()
    progress = Progress(terminal, 4)
    for done in (1, 2, 4):
        progress.update(done)
    progress.finish(4)

    text = terminal.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.count("\r") == 4
    assert "\r[" + "#" * 30 + "] 4/4 requests" in text


def test_plain_output_gets_a_line_per_ten_percent_crossed() -> None:
    plain = io.StringIO()
    progress = Progress(plain, 200)
    for done in (5, 20, 21, 65, 200):
        progress.update(done)
    progress.finish(200)

    lines = [line.split(" requests")[0] for line in plain.getvalue().splitlines()]
    assert lines == ["20/200", "65/200", "200/200"]


def test_percentiles_are_nearest_rank() -> None:
    times = [float(n) for n in range(1, 101)]  # 1 … 100
    assert summarize(times) == {
        "average": 50.5,
        "p50": 50.0,
        "p95": 95.0,
        "p99": 99.0,
        "max": 100.0,
        "min": 1.0,
    }
    assert percentile([3.0], 99) == 3.0
