"""The ``POOL`` option schema: names, types, per-vendor defaults, and validation.

Every pool option is declared once, here. The backends, the system checks and the
documentation table all read this schema, so a new option cannot be half-added.
Names follow the DataFlow guide (``pool_size``, ``pool_max_overflow`` …).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

VENDORS = ("postgresql", "mysql", "sqlite")


@dataclass(frozen=True)
class PoolOption:
    name: str
    kind: str  # "int", "seconds", "seconds_or_none", "bool"
    defaults: dict[str, Any]  # per vendor
    minimum: float = 0
    help: str = ""

    def default_for(self, vendor: str) -> Any:
        return self.defaults[vendor]


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
        ),
        PoolOption(
            "pool_max_overflow",
            "int",
            {"postgresql": 30, "mysql": 50, "sqlite": 0},
            help="Extra connections opened under load, closed again after idling.",
        ),
        PoolOption(
            "pool_recycle",
            "seconds_or_none",
            {"postgresql": 3600, "mysql": 7200, "sqlite": None},
            help="Replace a connection older than this many seconds; 0 or None: never.",
        ),
        PoolOption(
            "pool_pre_ping",
            "bool",
            {"postgresql": True, "mysql": True, "sqlite": False},
            help="Check a connection that idled longer than pool_pre_ping_bypass "
            "before lending it.",
        ),
        PoolOption(
            "pool_timeout",
            "seconds",
            _same(30.0),
            minimum=0,
            help="Seconds to wait for a free connection before PoolTimeout.",
        ),
        PoolOption(
            "pool_pre_ping_bypass",
            "seconds",
            _same(0.5),
            help="A connection used less than this many seconds ago is lent without a ping.",
        ),
        PoolOption(
            "pool_overflow_idle_timeout",
            "seconds",
            _same(30.0),
            help="Overflow connections idle this long are closed.",
        ),
    )
}


def _where(alias: str, key: str) -> str:
    return f"settings.DATABASES[{alias!r}]['POOL'][{key!r}]"


def validate_option(alias: str, name: str, value: Any) -> Any:
    """Return ``value`` normalised for option ``name``, or raise ImproperlyConfigured."""
    option = POOL_OPTIONS[name]
    where = _where(alias, name)
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise ImproperlyConfigured(f"{where} must be True or False, not {value!r}.")
        return value
    if option.kind == "seconds_or_none" and value is None:
        return None
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if option.kind == "int" and not (is_number and float(value).is_integer()):
        raise ImproperlyConfigured(f"{where} must be a whole number, not {value!r}.")
    if not is_number:
        raise ImproperlyConfigured(f"{where} must be a number of seconds, not {value!r}.")
    if value < option.minimum or (option.name == "pool_timeout" and value <= 0):
        bound = "greater than 0" if option.name == "pool_timeout" else f">= {option.minimum:g}"
        raise ImproperlyConfigured(f"{where} must be {bound}, not {value!r}.")
    return int(value) if option.kind == "int" else float(value)


def unknown_option_message(alias: str, key: Any) -> str:
    known = sorted(POOL_OPTIONS)
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"settings.DATABASES[{alias!r}]['POOL'] has an unknown option {key!r}.{hint} "
        f"Valid options: {', '.join(known)}."
    )


def resolve_pool_options(alias: str, vendor: str, settings_dict: dict[str, Any]) -> dict[str, Any]:
    """The effective pool options of one DATABASES entry: validated, with defaults.

    Raises ImproperlyConfigured naming the offending key (and the nearest valid name).
    """
    given = settings_dict.get("POOL")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ImproperlyConfigured(
            f"settings.DATABASES[{alias!r}]['POOL'] must be a dict of pool options, "
            f"not {type(given).__name__}."
        )
    for key in given:
        if key not in POOL_OPTIONS:
            raise ImproperlyConfigured(unknown_option_message(alias, key))
    resolved = {
        name: validate_option(alias, name, given[name])
        if name in given
        else option.default_for(vendor)
        for name, option in POOL_OPTIONS.items()
    }
    if settings_dict.get("CONN_MAX_AGE", 0) != 0:
        raise ImproperlyConfigured(
            f"settings.DATABASES[{alias!r}] sets CONN_MAX_AGE="
            f"{settings_dict['CONN_MAX_AGE']!r}, but its ENGINE pools connections. The pool "
            "already keeps connections open between requests; a persistent connection would "
            "hold one pooled connection per thread forever. Remove CONN_MAX_AGE (or set it "
            "to 0) and size the pool with POOL['pool_size'] instead."
        )
    return resolved
