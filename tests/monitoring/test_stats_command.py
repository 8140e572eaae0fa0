"""``manage.py pool_stats`` on hand-made snapshots (and hand-made ``--server`` views):
formats, --check outcomes, usage errors.

The end-to-end runs with real worker processes are in test_cross_process.py and
test_check.py.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_dataflow.monitoring.server import ServerView, SessionGroup
from tests.monitoring.factories import pool_entry, snapshot, write


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("pool_stats", *args, stdout=out)
    return out.getvalue()


def exit_status(*args: str) -> int:
    try:
        run(*args)
    except CommandError as error:
        return error.returncode
    return 0


@pytest.fixture
def stats_dir(tmp_path):
    return tmp_path


@pytest.fixture
def published(stats_dir):
    def publish(**values):
        write(stats_dir, snapshot({"default": pool_entry(**values)}))
        return ("--stats-dir", str(stats_dir))

    return publish


def test_the_table_speaks_pgbouncer(published):
    output = run(*published(checked_out=2, idle_connections=1, checkouts=9))

    header = next(line for line in output.splitlines() if line.startswith("ALIAS"))
    for column in ("ACTIVE", "IDLE", "WAITING", "MAXWAIT", "USAGE", "WAITS"):
        assert column in header
    wide = run(*published(checked_out=2, idle_connections=1, checkouts=9), "--wide")
    header = next(line for line in wide.splitlines() if line.startswith("ALIAS"))
    for column in ("CL_ACTIVE", "CL_WAITING", "SV_IDLE", "SV_LOGIN", "MAXWAIT", "USAGE"):
        assert column in header
    assert "SV_ACTIVE" not in header  # always CL_ACTIVE: shown once
    assert "default (1 process)" in output and "50%" in output


def test_json_has_the_guides_keys_per_alias_and_per_process(published):
    report = json.loads(run(*published(checked_out=1), "--format", "json"))

    default = report["aliases"]["default"]
    for key in ("size", "checked_out", "overflow", "total", "wait_queue", "overflow_max"):
        assert key in default["stats"]
    assert default["per_process"][0]["stats"]["checked_out"] == 1


def test_prometheus_format_parses(published):
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    text = run(*published(), "--format", "prometheus")

    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"django_dataflow_pool_size", "django_dataflow_checkouts"} <= names


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ({"checked_out": 1}, 0),
        ({"checked_out": 4}, 1),
        ({"wait_queue": 6}, 1),
        ({"recent_wait_time_max": 1.01}, 1),
    ],
)
def test_check_exit_status(published, values, status):
    assert exit_status(*published(**values), "--check") == status


def test_check_prints_each_reason_once(published):
    out = io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("pool_stats", *published(wait_queue=6, checked_out=4), "--check", stdout=out)

    assert error.value.returncode == 1
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("UNHEALTHY: ") for line in lines)
    assert "6 requests wait" in out.getvalue()
    # The command's error (printed as "CommandError: ...") repeats none of them.
    assert str(error.value) == "UNHEALTHY: 2 problems, listed above."


def test_check_with_nothing_published_exits_2(stats_dir):
    assert exit_status("--stats-dir", str(stats_dir), "--check") == 2


@pytest.mark.parametrize(
    "args",
    [
        ("--database", "nope"),
        ("--watch", "-1"),
        ("--watch", "1", "--format", "json"),
        ("--server", "--format", "prometheus"),
        ("--server", "--database", "default"),  # SQLite in the unit settings
    ],
)
def test_usage_errors_exit_2(stats_dir, args):
    assert exit_status("--stats-dir", str(stats_dir), *args) == 2


def test_an_unreadable_directory_exits_2(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "stats").symlink_to(tmp_path / "elsewhere")

    assert exit_status("--stats-dir", str(tmp_path / "stats")) == 2


def test_watch_refreshes_until_interrupted(published, monkeypatch):
    rounds = []

    def sleep(seconds):
        rounds.append(seconds)
        if len(rounds) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("time.sleep", sleep)

    output = run(*published(), "--watch", "0.5")

    assert output.count("ALIAS / PROCESS") == 2 and rounds == [0.5, 0.5]


def test_watch_with_check_stops_at_the_first_unhealthy_round(published, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda seconds: None)

    assert exit_status(*published(checked_out=4), "--watch", "1", "--check") == 1


def server_view() -> ServerView:
    ours = SessionGroup("django-dataflow:default:123", "default", 123, "10.0.0.1")
    for state, seconds in [("idle", 0.25), ("idle", 3.5), ("active", None)]:
        ours.add(state, seconds)
    other = SessionGroup("", None, None, "local")
    other.add("active", 12)
    notes = ["idle in transaction is not told apart"]
    return ServerView("default", "postgresql", "mysite", 100, 3, 17, [ours, other], notes)


def test_the_server_table_groups_sessions_by_application_and_process():
    header, body = server_view().table().split("\n\n")

    assert header == (
        "Server sessions on postgresql database 'mysite' (alias 'default'): max_connections "
        "100, 3 reserved for superusers, 17 in use on the server, headroom 80"
    )
    columns, ours, other, note = body.splitlines()
    assert columns.split() == ["APPLICATION", "ALIAS", "PID", "CLIENT", "SESSIONS", "STATES"]
    assert ours.split(None, 5) == [
        "django-dataflow:default:123", "default", "123", "10.0.0.1", "3",
        "1 active, 2 idle (longest 3.50s)",
    ]  # fmt: skip
    assert other.split(None, 5) == ["(none)", "-", "-", "local", "1", "1 active (longest 12.00s)"]
    assert note == "Note: idle in transaction is not told apart."


def test_the_server_json_has_the_counts_and_the_groups():
    document = server_view().to_json()

    assert document["headroom"] == 80 and document["reserved_connections"] == 3
    assert document["groups"][0] == {
        "application": "django-dataflow:default:123",
        "alias": "default",
        "pid": 123,
        "client": "10.0.0.1",
        "sessions": 3,
        "states": {"idle": 2, "active": 1},
        "longest_seconds": {"idle": 3.5},
    }


def table_lines(output: str) -> list[str]:
    return output.split("\n\n")[1].splitlines()


def test_the_table_fits_100_columns_and_wide_shows_every_column(stats_dir):
    write(stats_dir, snapshot({"default": pool_entry(checkouts=123456, connections_created=99)}))
    write(stats_dir, snapshot({"a-long-alias-name": pool_entry()}, pid=1, instance="b"))

    narrow = table_lines(run("--stats-dir", str(stats_dir)))
    wide = table_lines(run("--stats-dir", str(stats_dir), "--wide"))

    assert narrow[0].startswith("ALIAS") and max(map(len, narrow)) <= 100
    for column in ("CHECKOUTS", "CREATED", "LEAKS", "WAIT_AVG", "BUSY_WAITS", "OPEN_WAITS"):
        assert column in wide[0]
    assert "123456" in "\n".join(wide)


def test_waits_for_a_connection_being_opened_are_told_from_waits_for_a_busy_pool(stats_dir):
    # A cold start of a 50-slot pool: 30 borrowers waited while connections were opened.
    cold = pool_entry(pool_size=50, waits=30, connect_waits=30, connections_created=30)
    write(stats_dir, snapshot({"default": cold}))

    output = run("--stats-dir", str(stats_dir))
    wide = run("--stats-dir", str(stats_dir), "--wide")

    row = next(line for line in table_lines(output) if line.startswith("default"))
    assert " 0/30 " in row  # no wait for a busy pool, 30 for connections being opened
    header, first = table_lines(wide)[:2]
    values = dict(zip(header.split()[3:], first.split()[3:], strict=False))
    assert values["BUSY_WAITS"] == "0" and values["OPEN_WAITS"] == "30"


def test_control_characters_in_names_are_escaped(stats_dir):
    write(
        stats_dir,
        snapshot({"de\x1b[2Jfault": pool_entry()}, pid=1, instance="b", program="gun\x07icorn"),
    )

    output = run("--stats-dir", str(stats_dir))

    assert "\x1b" not in output and "\x07" not in output
    assert "de\\x1b[2Jfault" in output and "gun\\x07icorn" in output
