"""The DataFlow guide's lifecycle hooks, on every pooled database of the site.

* ``on_connect`` names each new physical connection ``example-<pid>``, so that on
  PostgreSQL ``SELECT application_name FROM pg_stat_activity`` shows which process holds
  it. Only PostgreSQL has ``application_name``; on MySQL and SQLite django-dataflow keeps
  the name in ``connection_record.info["application_name"]`` instead.
* ``on_checkout`` / ``on_checkin`` time every checkout, as the guide does: a connection
  held longer than SLOW_CHECKOUT_SECONDS is logged as a warning, and the totals are kept
  for the /pool/ page (``checkout_times()``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from django_dataflow import on_checkin, on_checkout, on_connect

logger = logging.getLogger("accounts.pool")

# The guide's threshold for "Connection held for … seconds".
SLOW_CHECKOUT_SECONDS = 5.0

_lock = threading.Lock()
# alias -> {"checkouts": n, "total": seconds, "max": seconds}
_times: dict[str, dict[str, float]] = {}


@on_connect
def set_application_name(connection: Any, connection_record: Any) -> None:
    connection.execute(f"SET application_name = 'example-{os.getpid()}'")


@on_checkout
def remember_checkout_time(connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    connection_record.info["checkout_time"] = time.monotonic()
    connection_record.info["alias"] = connection_proxy.alias


@on_checkin
def record_checkout_time(connection: Any, connection_record: Any) -> None:
    started = connection_record.info.pop("checkout_time", None)
    if started is None:
        return
    held = time.monotonic() - started
    alias = connection_record.info.get("alias", "?")
    with _lock:
        entry = _times.setdefault(alias, {"checkouts": 0, "total": 0.0, "max": 0.0})
        entry["checkouts"] += 1
        entry["total"] += held
        entry["max"] = max(entry["max"], held)
    if held > SLOW_CHECKOUT_SECONDS:
        logger.warning("A connection of %r was held for %.2f seconds.", alias, held)


def checkout_times() -> dict[str, dict[str, float]]:
    """Per alias: checkouts timed in this process, their average and longest hold (s)."""
    with _lock:
        return {
            alias: {
                "checkouts": entry["checkouts"],
                "average": entry["total"] / entry["checkouts"] if entry["checkouts"] else 0.0,
                "max": entry["max"],
            }
            for alias, entry in _times.items()
        }
