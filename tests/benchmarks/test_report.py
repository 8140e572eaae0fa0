"""The benchmark's target verdicts show how far the runs behind a median ratio spread
(benchmarks/report.py): a verdict inside that spread is not a result."""

from __future__ import annotations

from benchmarks.report import check_targets, summarize_b


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


def test_a_p99_verdict_gives_the_median_and_the_range_of_the_per_run_ratios():
    runs = [run(70.0, 100.0), run(90.0, 100.0), run(120.0, 100.0)]
    summary = summarize_b(runs, ["ours", "native"])
    checks = dict(
        (target, (measured, holds))
        for target, measured, holds in check_targets(
            "postgresql", None, {"cold": summary}, limit=50
        )
    )

    measured, holds = checks["(b, cold) ours p99 / native p99 <= 0.80"]
    assert measured == "0.900x (0.70-1.20 in 3)"
    assert holds is False
    assert checks["(b, cold) ours req/s / native req/s >= 1.05"] == (
        "1.000x (1.00-1.00 in 3)",
        False,
    )


def test_a_single_run_has_no_range():
    summary = summarize_b([run(70.0, 100.0)], ["ours", "native"])
    checks = {t: m for t, m, _ in check_targets("postgresql", None, {"warm": summary}, 50)}
    assert checks["(b, warm) ours p99 / native p99 <= 0.80"] == "0.700x"
