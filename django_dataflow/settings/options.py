"""The option schema: names, types, per-vendor defaults, and validation.

Every option is declared once, here: the ``POOL`` options of a DATABASES entry and the
connection settings ``DataFlowConfig`` writes into ``OPTIONS``. The backends, the system
checks, ``DataFlowConfig``, DATABASE_URL parsing and the documentation table all read this
schema, so a new option cannot be half-added. Names follow the DataFlow guide
(``pool_size``, ``pool_max_overflow`` …). What an entry as a whole may hold is
``validation.py``'s business.
"""

from __future__ import annotations

import difflib
import math
import threading
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from django_dataflow.settings.engines import VENDOR_LABELS, VENDORS

ISOLATION_LEVELS = ("READ_UNCOMMITTED", "READ_COMMITTED", "REPEATABLE_READ", "SERIALIZABLE")
# No pool, overflow or statement cache is this large; a larger number is a typo (and
# 10**400 would overflow where it is turned into a float).
MAX_COUNT = 100_000


class ConfigurationError(ImproperlyConfigured, ValueError):
    """A pool or connection setting is wrong. The message names the setting and the fix.

    Both an ImproperlyConfigured (what Django code expects from settings) and a
    ValueError (what Python code expects from a constructor argument).
    """


class InvalidValue(ValueError):
    """Raised by ``normalize``; the message is the complaint ("must be >= 1, not 0")."""


@dataclass(frozen=True)
class PoolOption:
    name: str
    kind: str  # "int", "seconds", "seconds_or_none", "bool", "choice", "isolation_level"
    defaults: dict[str, Any]  # per vendor; a vendor missing here cannot use the option
    minimum: float = 0
    exclusive_minimum: bool = False
    # The largest sensible value (None: the kind's own limit, see ``normalize``).
    maximum: float | None = None
    help: str = ""
    choices: tuple[str, ...] = ()
    # The ConnectionPool keyword argument the value is passed as (the backends build the
    # pool's arguments from this schema). None for an option the pool does not take:
    # ``used_by`` then names what reads it instead.
    pool_argument: str | None = None
    used_by: str = ""

    def default_for(self, vendor: str) -> Any:
        return self.defaults[vendor]

    def applies_to(self, vendor: str) -> bool:
        return vendor in self.defaults


def _same(value: Any) -> dict[str, Any]:
    return dict.fromkeys(VENDORS, value)


POOL_OPTIONS: dict[str, PoolOption] = {
    option.name: option
    for option in (
        PoolOption(
            "pool_size",
            "int",
            {"postgresql": 20, "mysql": 30, "sqlite": 5},
            minimum=1,
            help="Connections kept open once made.",
            pool_argument="pool_size",
        ),
        PoolOption(
            "pool_max_overflow",
            "int",
            {"postgresql": 30, "mysql": 50, "sqlite": 0},
            help="Extra connections opened under load, closed again after idling.",
            pool_argument="max_overflow",
        ),
        PoolOption(
            "pool_recycle",
            "seconds_or_none",
            {"postgresql": 3600.0, "mysql": 7200.0, "sqlite": None},
            help="Replace a connection older than this many seconds; 0 or None: never.",
            pool_argument="recycle",
        ),
        PoolOption(
            "pool_pre_ping",
            "bool",
            {"postgresql": True, "mysql": True, "sqlite": False},
            help="Check a connection that idled longer than pool_pre_ping_bypass "
            "before lending it.",
            pool_argument="pre_ping",
        ),
        PoolOption(
            "pool_timeout",
            "seconds",
            _same(30.0),
            exclusive_minimum=True,
            help="Seconds to wait for a free connection before PoolTimeout.",
            pool_argument="timeout",
        ),
        PoolOption(
            "pool_pre_ping_bypass",
            "seconds",
            _same(0.5),
            help="A connection used less than this many seconds ago is lent without a ping.",
            pool_argument="pre_ping_bypass",
        ),
        PoolOption(
            "pool_overflow_idle_timeout",
            "seconds",
            _same(30.0),
            help="Overflow connections idle this long are closed.",
            pool_argument="overflow_idle_timeout",
        ),
        PoolOption(
            "pool_thread_affinity",
            "bool",
            _same(True),
            help="Between requests a thread keeps its idle connection for its next "
            "request, lendable to other threads meanwhile (as a persistent connection, "
            "without holding it).",
            pool_argument="thread_affinity",
        ),
        PoolOption(
            "pool_scope",
            "choice",
            _same("request"),
            choices=("request", "transaction"),
            help="How long a connection is held: 'request', from the first query to the "
            "end of the request; 'transaction', only while a query, a transaction or an "
            "open cursor needs it (docs/backends.md).",
            used_by="the backends (backends/scope.py)",
        ),
        PoolOption(
            "pool_leak_threshold",
            "seconds_or_none",
            _same(None),
            help="Report a connection checked out longer than this many seconds, with the "
            "stack that took it; 0 or None: off.",
            pool_argument="leak_threshold",
        ),
        PoolOption(
            "pool_leak_action",
            "choice",
            _same("log"),
            choices=("log", "log_and_recycle"),
            help="What to do with a leaked connection: log it, or log it and replace it "
            "once it is returned.",
            pool_argument="leak_action",
        ),
        PoolOption(
            "pool_leak_check_interval",
            "seconds",
            _same(1.0),
            exclusive_minimum=True,
            help="How often the housekeeper looks for leaks, in seconds.",
            pool_argument="leak_check_interval",
        ),
        PoolOption(
            "statement_cache_size",
            "int",
            {"postgresql": 0},
            help="Prepared statements kept per connection (psycopg's prepared_max); "
            "0: no prepared statements.",
            used_by="the PostgreSQL connector (psycopg's prepared_max)",
        ),
        PoolOption(
            "behind_transaction_pooler",
            "bool",
            {"postgresql": False},
            help="The server is reached through a transaction-mode pooler (PgBouncer): "
            "no prepared statements, no server-side cursors.",
            used_by="the system checks (dataflow.E006, W002)",
        ),
        PoolOption(
            "pool_reset_on_return",
            "bool",
            {"postgresql": False, "mysql": False},
            help="Reset the whole session on every return (PostgreSQL DISCARD ALL, "
            "MariaDB's COM_RESET_CONNECTION): SET variables, temporary tables and session "
            "locks end with the request. Such a connection is never parked.",
            used_by="the PostgreSQL and MySQL connectors (reset on checkin)",
        ),
    )
}


def pool_arguments(options: dict[str, Any]) -> dict[str, Any]:
    """The ConnectionPool keyword arguments for an entry's effective POOL ``options``."""
    return {
        option.pool_argument: options[name]
        for name, option in POOL_OPTIONS.items()
        if option.pool_argument is not None and name in options
    }


# Settings of the DB-API connection, not of the pool. DataFlowConfig and DATABASE_URL
# accept them under the guide's names and write them into the entry's OPTIONS, where
# Django's own backends read them.
CONNECTION_SETTINGS: dict[str, PoolOption] = {
    option.name: option
    for option in (
        PoolOption(
            "isolation_level",
            "isolation_level",
            {"postgresql": "READ_COMMITTED", "mysql": "READ_COMMITTED"},
            help="Transaction isolation level of every connection.",
        ),
        PoolOption(
            "check_same_thread",
            "bool",
            {"sqlite": False},
            help="sqlite3's thread check; pooled connections move between threads, so "
            "only False works.",
        ),
    )
}

ALL_OPTIONS: dict[str, PoolOption] = {**POOL_OPTIONS, **CONNECTION_SETTINGS}

# Where a connection setting goes in a hand-written DATABASES entry.
# psycopg_pool's names (Django's OPTIONS["pool"]), and ours for the same thing.
PSYCOPG_POOL_NAMES = {
    "min_size": "pool_size",
    "max_size": "pool_size + pool_max_overflow",
    "timeout": "pool_timeout",
    "max_lifetime": "pool_recycle",
    "max_idle": "pool_overflow_idle_timeout",
}
# Driver connection options (they go in OPTIONS): hinted as such, never as the POOL
# option they happen to look like (connect_timeout is not pool_timeout).
DRIVER_OPTIONS = frozenset(
    {
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "prepare_threshold",
        "server_side_binding",
        "sslmode",
        "options",
        "application_name",
        "keepalives",
        "keepalives_idle",
        "target_session_attrs",
        "assume_role",
        "init_command",
        "charset",
        "sql_mode",
        "ssl",
        "transaction_mode",
    }
)
CONNECTION_SETTING_HINTS = {
    "isolation_level": "set OPTIONS['isolation_level'] instead ('read committed' on MySQL, "
    "a psycopg.IsolationLevel on PostgreSQL), or build the entry with "
    "DataFlowConfig(isolation_level='READ_COMMITTED').as_database().",
    "check_same_thread": "leave it out: Django always opens SQLite connections with "
    "check_same_thread=False.",
}


# -- values ------------------------------------------------------------------------------


def normalize(option: PoolOption, value: Any) -> Any:
    """Return ``value`` normalised for ``option``, or raise InvalidValue with the complaint."""
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise InvalidValue(f"must be True or False, not {value!r}")
        return value
    if option.kind == "isolation_level":
        return _isolation_level(value)
    if option.kind == "choice":
        if value not in option.choices:
            raise InvalidValue(
                f"must be one of {', '.join(map(repr, option.choices))}, not {value!r}"
            )
        return value
    if option.kind == "seconds_or_none" and value is None:
        return None
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    maximum = option.maximum
    if maximum is None:
        maximum = MAX_COUNT if option.kind == "int" else threading.TIMEOUT_MAX
    if isinstance(value, int) and is_number and abs(value) > maximum:
        # Before anything turns it into a float (OverflowError beyond 1e308).
        raise InvalidValue(f"must be at most {maximum:g}, not {_short(value)}")
    if option.kind == "int" and not (is_number and (isinstance(value, int) or value.is_integer())):
        raise InvalidValue(f"must be a whole number, not {value!r}")
    if not is_number:
        raise InvalidValue(f"must be a number of seconds, not {value!r}")
    if option.kind == "int" and value > maximum:
        raise InvalidValue(f"must be at most {maximum:g}, not {value!r}")
    if not math.isfinite(value):
        # inf would overflow the waits, nan compares false with everything.
        never = " (None for never)" if option.kind == "seconds_or_none" else ""
        raise InvalidValue(f"must be a finite number{never}, not {value!r}")
    if option.kind != "int" and value > threading.TIMEOUT_MAX:
        # What a wait accepts (about 292 years); beyond it Event.wait() overflows.
        raise InvalidValue(f"must be at most {threading.TIMEOUT_MAX:g} seconds, not {value!r}")
    if option.exclusive_minimum and value <= option.minimum:
        raise InvalidValue(f"must be greater than {option.minimum:g}, not {value!r}")
    if value < option.minimum:
        raise InvalidValue(f"must be >= {option.minimum:g}, not {value!r}")
    return int(value) if option.kind == "int" else float(value)


def _short(value: int) -> str:
    text = repr(value)
    return text if len(text) <= 30 else f"a number of {len(text)} digits"


def _isolation_level(value: Any) -> str:
    # The guide writes "READ_COMMITTED", Django's MySQL backend "read committed", and
    # psycopg has IsolationLevel.READ_COMMITTED: all three name the same level.
    text = getattr(value, "name", value)
    if isinstance(text, str):
        canonical = "_".join(text.replace("-", " ").replace("_", " ").upper().split())
        if canonical in ISOLATION_LEVELS:
            return canonical
    raise InvalidValue(f"must be one of {', '.join(ISOLATION_LEVELS)}, not {value!r}")


TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
NONE_WORDS = frozenset({"none", "null", "never"})


def parse_text(option: PoolOption, text: str) -> Any:
    """Read ``option`` from text (a DATABASE_URL query parameter, an environment
    variable), normalised; raise InvalidValue with the complaint."""
    word = text.strip().lower()
    if option.kind == "bool":
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise InvalidValue(f"must be true or false, not {text!r}")
    if option.kind in ("isolation_level", "choice"):
        return normalize(option, text.strip())
    if option.kind == "seconds_or_none" and word in NONE_WORDS:
        return None
    try:
        number = int(word) if option.kind == "int" else float(word)
    except ValueError:
        what = "a whole number" if option.kind == "int" else "a number of seconds"
        shown = repr(text) if len(text) <= 40 else f"{text[:30]!r}... ({len(text)} characters)"
        raise InvalidValue(f"must be {what}, not {shown}") from None
    return normalize(option, number)


def is_off(value: Any) -> bool:
    """Is ``value`` the "not used" value of an option (None, False, 0)? An option another
    vendor uses may be given with it, so one snippet can serve several vendors."""
    return value is None or value is False or (type(value) in (int, float) and value == 0)


def vendor_complaint(option: PoolOption, vendor: str) -> str:
    """Why ``option`` cannot be used with ``vendor`` (call only when it cannot)."""
    users = " and ".join(VENDOR_LABELS[name] for name in option.defaults)
    return f"applies only to {users}, not to {VENDOR_LABELS[vendor]}"


def unknown_option_hint(key: Any) -> str:
    """The hint for an unknown POOL key: where a connection setting goes, or the nearest
    valid name."""
    # Compared in lower case: POOL_SIZE (Django's own settings are upper case) is
    # pool_size misspelt.
    lowered = str(key).lower()
    if lowered in CONNECTION_SETTING_HINTS:
        return (
            f"{key!r} is a connection setting, not a pool option: "
            + (CONNECTION_SETTING_HINTS[lowered])
        )
    known = sorted(POOL_OPTIONS)
    if lowered in PSYCOPG_POOL_NAMES:
        return (
            f"{key!r} is psycopg_pool's name (Django's own OPTIONS['pool']); this pool "
            f"calls it {PSYCOPG_POOL_NAMES[lowered]}."
        )
    if lowered in DRIVER_OPTIONS:
        return (
            f"{key!r} is a driver option, not a pool option: set OPTIONS[{key!r}] "
            "instead (it is passed to the driver with every connect)."
        )
    close = difflib.get_close_matches(lowered, known, n=1)
    nearest = f"Did you mean {close[0]!r}? " if close else ""
    return f"{nearest}Valid options: {', '.join(known)}."
