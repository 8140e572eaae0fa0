"""Shared helpers of the tests of the Django glue under concurrency."""

from __future__ import annotations


def request(wrapper, sql: str = "SELECT 1"):
    """One request's database work, framed as Django's request signals frame it."""
    wrapper.close_if_unusable_or_obsolete()  # request_started
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()
    finally:
        wrapper.close_if_unusable_or_obsolete()  # request_finished


def at_rest(pool) -> dict:
    stats = pool.get_stats()
    return {
        "checked_out": stats["checked_out"],
        "balanced": stats["checkouts"] == stats["checkins"],
        "wait_queue": stats["wait_queue"],
    }


AT_REST = {"checked_out": 0, "balanced": True, "wait_queue": 0}
