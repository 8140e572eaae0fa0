"""Workload (c)'s summaries, target checks and table (the workload is external_calls.py).

Per variant (``threads-200 cold`` ...) and contender: the least requests served of the
runs, errors summed, medians of p50/p99, the run maxima of sessions, and the p99 of
transaction scope as the median of its per-run ratios to request scope's.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.report import _fmt, _fmt_ratio, paired_ratio, paired_ratios

LABELS = {"ours": "request scope", "ours+transaction": "transaction scope"}
TXN = "ours+transaction"
P99_TARGET = 1.20  # transaction scope p99 / request scope p99, at --c-inflight threads


def _median(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize_c(runs: list[dict[str, dict[str, Any]]], keys: list[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for key in keys:
        mine = [r[key] for r in runs if key in r]
        if not mine:
            continue
        row: dict[str, Any] = {
            "runs": mine,
            "requests": mine[0]["requests"],
            "served_min": min(m["served"] for m in mine),
            "errors": sum(m["errors"] for m in mine),
            "timeouts": sum(m["timeouts"] for m in mine),
            "first_error": next((m["first_error"] for m in mine if m["first_error"]), None),
            "leftover_max": max(m["leftover"] for m in mine),
            "lent_after_max": max(m.get("lent_after", 0) for m in mine),
        }
        for metric in ("p50_ms", "p99_ms", "created"):
            row[metric] = _median([m[metric] for m in mine])
        for metric in ("sessions_max", "pool_total_max", "checked_out_max", "created"):
            row[f"{metric}_runs"] = [m[metric] for m in mine]
        pairs = [
            {key: r[key]["p99_ms"], "ours": r["ours"]["p99_ms"]}
            for r in runs
            if key in r and "ours" in r
        ]
        row["p99_vs_request"] = paired_ratio(pairs, key, "ours") if key != "ours" else None
        row["p99_vs_request_runs"] = paired_ratios(pairs, key, "ours") if key != "ours" else []
        rows[key] = row
    return rows


def _range(values: list[Any]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    low, high = min(values), max(values)
    return f"{high:g}" if low == high else f"{high:g} ({low:g}-{high:g})"


def check_targets_c(vendor: str, c: dict[str, Any] | None, args_c: dict[str, Any]) -> list:
    """[(target, measured, holds)] for transaction scope; sessions are the run's maximum."""
    checks: list[tuple[str, str, bool | None]] = []
    if not c:
        return checks
    size, inflight = args_c["pool_size"], args_c["inflight"]
    for variant, summary in c["summary"].items():
        row = summary.get(TXN)
        if row is None:
            continue
        shape = variant.split()[0]  # "threads-200 cold" -> "threads-200"
        if shape != f"threads-{inflight}" or args_c["requests"] == inflight:
            served = f"{row['served_min']}/{row['requests']} (least of runs)"
            served += f", {row['errors']} errors"
            checks.append(
                (
                    f"(c, {variant}) transaction scope serves every request, 0 errors",
                    served,
                    row["served_min"] == row["requests"] and row["errors"] == 0,
                )
            )
            peak = max(row["sessions_max_runs"], default=None)
            checks.append(
                (
                    f"(c, {variant}) transaction scope sessions <= {size}",
                    _range(row["sessions_max_runs"]),
                    None if peak is None else peak <= size,
                )
            )
        if shape == f"threads-{inflight}":
            ratio = row["p99_vs_request"]
            checks.append(
                (
                    f"(c, {variant}) transaction p99 / request p99 <= {P99_TARGET:.2f}",
                    _fmt_ratio(ratio, row["p99_vs_request_runs"]),
                    None if ratio is None else ratio <= P99_TARGET,
                )
            )
    return checks


def table_c(c: dict[str, Any], markdown: bool, table: Any) -> str:
    """One table for the vendor: a row per variant and contender."""
    headers = [
        "requests",
        "pool_scope",
        "served (least)",
        "errors (timeouts)",
        "p50 ms",
        "p99 ms",
        "p99 x request",
        "sessions (max)",
        "lent (max)",
        "created",
    ]
    rows = []
    for variant, summary in c["summary"].items():
        for entry in c["contenders"]:
            key, row = entry["key"], summary.get(entry["key"])
            if entry["unavailable"] or row is None:
                reason = entry["unavailable"] or "not measured"
                rows.append([variant, LABELS[key], "n/a", *([""] * 6), reason])
                continue
            rows.append(
                [
                    variant,
                    LABELS[key],
                    f"{row['served_min']}/{row['requests']}",
                    f"{row['errors']} ({row['timeouts']})",
                    _fmt(row["p50_ms"], ".0f"),
                    _fmt(row["p99_ms"], ".0f"),
                    _fmt_ratio(row["p99_vs_request"], row["p99_vs_request_runs"])
                    if key != "ours"
                    else "",
                    _range(row["sessions_max_runs"]),
                    _range(row["checked_out_max_runs"]),
                    _range(row["created_runs"]),
                ]
            )
    return table(headers, rows, markdown)


def caption_c(params: dict[str, Any], vendor: str) -> str:
    source = {
        "postgresql": "pg_stat_activity",
        "mysql": "information_schema.PROCESSLIST",
    }.get(vendor, "no server: the pool's open connections (get_stats total)")
    return (
        f"(c) each request SELECT 1, {params['sleep_ms']:g} ms of waiting, SELECT 1; all "
        f"started together; pool {params['pool_size']}+{params['max_overflow']}, "
        f"pool_timeout {params['timeout']:g} s; cold: from a closed pool, warm: its "
        f"{params['pool_size']} connections open; medians of "
        f"{params['runs']} runs, (min-max) over the runs; sessions: most open at once "
        f"({source}); lent: the pool's most connections checked out at once"
    )
