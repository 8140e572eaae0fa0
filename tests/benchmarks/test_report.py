"""The benchmark's target verdicts show how far the runs behind a median ratio spread
(benchmarks/report.py): a verdict inside that spread is not a result. The cold-burst p99
target is withdrawn; the spike workload's targets (connections open at the end of the
burst, burst time against the native pool) stand in its place."""

from __future__ import annotations

from benchmarks.report import (
    SPIKE_OPEN_TARGET,
    check_targets,
    render,
    summarize_b,
    summarize_spike,
)


def run(ours_p99: float, native_p99: float) -> dict:
    def measured(p99: float) -> dict:
        return {
            "rps": 1000.0,
            "p50_ms": 10.0,
            "p99_ms": p99,
            "opened": 50,
            "errors": 0,
            "first_error": None,
            "leftover": 0,
            "other_clients": 0,
        }

    return {"ours": measured(ours_p99), "native": measured(native_p99)}


def spike_run(ours: tuple[int, float], native: tuple[int, float], dbcp=(45, 230.0)) -> dict:
    def measured(open_at_end: int, burst_ms: float) -> dict:
        return {
            "open_before": 5,
            "open_at_end": open_at_end,
            "delaying_at_end": 0,
            "pool_says_at_end": open_at_end,
            "burst_ms": burst_ms,
            "opened": open_at_end - 5,
            "peak_open": open_at_end,
            "open_after": open_at_end,
            "server_sessions": open_at_end,
            "p50_ms": 10.0,
            "max_ms": burst_ms - 2,
            "errors": 0,
            "first_error": None,
            "leftover": 0,
        }

    return {"ours": measured(*ours), "native": measured(*native), "dbcp": measured(*dbcp)}


def verdicts(checks):
    return {target: (measured, holds) for target, measured, holds in checks}


def test_a_p99_verdict_gives_the_median_and_the_range_of_the_per_run_ratios():
    runs = [run(70.0, 100.0), run(90.0, 100.0), run(120.0, 100.0)]
    summary = summarize_b(runs, ["ours", "native"])
    checks = verdicts(check_targets("postgresql", None, {"warm": summary}, limit=50))

    measured, holds = checks["(b, warm) ours p99 / native p99 <= 0.80"]
    assert measured == "0.900x (0.70-1.20 in 3)"
    assert holds is False
    assert checks["(b, warm) ours req/s / native req/s >= 1.05"] == (
        "1.000x (1.00-1.00 in 3)",
        False,
    )


def test_a_single_run_has_no_range():
    summary = summarize_b([run(70.0, 100.0)], ["ours", "native"])
    checks = {t: m for t, m, _ in check_targets("postgresql", None, {"warm": summary}, 50)}
    assert checks["(b, warm) ours p99 / native p99 <= 0.80"] == "0.700x"


def test_the_cold_p99_target_is_withdrawn_and_the_other_cold_targets_stay():
    summary = summarize_b([run(70.0, 100.0)], ["ours", "native"])
    targets = [t for t, _, _ in check_targets("postgresql", None, {"cold": summary}, 50)]
    assert targets == [
        "(b, cold) ours req/s / native req/s >= 1.05",
        "(b, cold) ours connections opened <= 50",
    ]


def test_spike_targets_take_the_median_open_at_end_and_the_paired_burst_ratio():
    runs = [
        spike_run((7, 30.0), (6, 25.0)),
        spike_run((7, 24.0), (6, 30.0)),
        spike_run((12, 27.0), (6, 27.0)),
    ]
    summary = summarize_spike(runs, ["ours", "native", "dbcp"])
    assert summary["ours"]["open_at_end_runs"] == [7, 7, 12]
    assert summary["dbcp"]["burst_ms_vs_native"] is not None
    checks = verdicts(check_targets("postgresql", None, None, 50, summary))

    assert checks[
        f"(spike) ours connections open at the end of the burst <= {SPIKE_OPEN_TARGET}"
    ] == ("7 (7-12 in 3)", True)
    assert checks["(spike) ours burst time / native burst time <= 1.00"] == (
        "1.000x (0.80-1.20 in 3)",
        True,
    )


def test_spike_misses_when_ours_ends_with_too_many_connections_or_slower():
    summary = summarize_spike([spike_run((45, 240.0), (6, 25.0))], ["ours", "native"])
    checks = verdicts(check_targets("postgresql", None, None, 50, summary))
    assert checks["(spike) ours connections open at the end of the burst <= 10"] == ("45", False)
    assert checks["(spike) ours burst time / native burst time <= 1.00"][1] is False


def test_render_shows_the_spike_table():
    summary = summarize_spike([spike_run((7, 30.0), (6, 25.0))], ["ours", "native", "dbcp"])
    result = {
        "params": {
            "spike": {
                "runs": 1,
                "threads": 50,
                "size": 5,
                "max": 50,
                "delay_ms": 150.0,
                "query_ms": 2.0,
            }
        },
        "vendors": {
            "postgresql": {
                "server": "PostgreSQL 15",
                "spike": {
                    "summary": summary,
                    "contenders": [
                        {"key": k, "alias": f"pgspike_{k}", "unavailable": None, "settings": {}}
                        for k in ("ours", "native", "dbcp")
                    ],
                },
                "targets": check_targets("postgresql", None, None, 50, summary),
            }
        },
    }
    text = render(result, markdown=True)
    assert "every connect delayed 150 ms" in text
    assert "| ours | 7 | 30 | 1.200x |" in text
    assert "| dbcp | 45 | 230 | 9.200x |" in text
