"""``DATAFLOW_ROUTING``: the database sets the router sends queries to, parsed once.

One setting describes every primary with its replicas and its analytics database::

    DATAFLOW_ROUTING = {
        "default": {  # the key is the primary (write) alias
            "replicas": {"replica1": 2, "replica2": 1},  # alias -> weight, or a list
            "analytics": "analytics",
            "analytics_models": ["reports.DailySales"],
        },
        "events": {"replicas": ["events_replica"], "apps": ["events"]},
    }

The parser serves two masters: the system checks, which report every error with a
stable id (``dataflow.E101`` …), and the router, which refuses to route with an invalid
setting (ImproperlyConfigured) rather than guess. The parsed form is cached and dropped
on ``setting_changed``, so ``override_settings`` works in tests.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeGuard

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS

SETTING = "DATAFLOW_ROUTING"
OPTION_DEFAULTS: dict[str, float | None] = {
    "pin_seconds": 5.0,  # ReadYourWritesMiddleware keeps a writer on the primary this long
    "max_lag": None,  # seconds; None: replication lag is not checked
    "lag_check_interval": 5.0,  # seconds between two lag checks of one replica
    "cooldown": 30.0,  # seconds an unreachable replica is skipped before another try
}
LIST_KEYS = ("apps", "models", "analytics_apps", "analytics_models")
SET_KEYS = ("replicas", "analytics", *LIST_KEYS, *OPTION_DEFAULTS)

PRIMARY, REPLICA, ANALYTICS = "primary", "replica", "analytics"


class Problem(NamedTuple):
    """One error in the setting; ``routing_checks`` turns it into a check message."""

    id: str  # "E101" …, prefixed with "dataflow." by the checks
    msg: str
    hint: str | None = None


@dataclass(frozen=True)
class DatabaseSet:
    """A primary, its replicas (with weights) and its analytics alias."""

    primary: str
    replicas: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    analytics: str | None = None
    # True when the analytics alias only mirrors the primary (no models of its own).
    analytics_is_mirror: bool = True
    pin_seconds: float = 5.0
    max_lag: float | None = None
    lag_check_interval: float = 5.0
    cooldown: float = 30.0


class Route(NamedTuple):
    """Where one model lives: its set, and whether it is one of the set's analytics models."""

    dbset: DatabaseSet
    analytics: bool


@dataclass
class RoutingConfig:
    sets: dict[str, DatabaseSet]
    # "app_label" or "app_label.modelname" (lower case) -> Route
    claims: dict[str, Route]
    default: Route | None
    roles: dict[str, tuple[str, DatabaseSet]] = field(default_factory=dict)
    _routes: dict[Any, Route | None] = field(default_factory=dict)

    def route(self, model: Any) -> Route | None:
        """The route of a model class (cached: called on every query)."""
        try:
            return self._routes[model]
        except KeyError:
            pass
        meta = model._meta
        concrete = meta.concrete_model._meta if meta.concrete_model else meta
        route = self.route_labels(meta.app_label, meta.model_name, concrete)
        self._routes[model] = route
        return route

    def route_labels(
        self, app_label: str, model_name: str | None, concrete: Any = None
    ) -> Route | None:
        """The route of a model named by labels, as ``allow_migrate`` receives it."""
        keys = []
        if model_name:
            keys.append(f"{app_label}.{model_name}".lower())
        if concrete is not None:
            keys.append(concrete.label_lower)
        keys.append(app_label)
        if concrete is not None:
            keys.append(concrete.app_label)
        for key in keys:
            route = self.claims.get(key)
            if route is not None:
                return route
        return self.default

    def role_of(self, alias: str) -> tuple[str, DatabaseSet] | None:
        """``(PRIMARY | REPLICA | ANALYTICS, set)`` of an alias, or None if unconfigured."""
        return self.roles.get(alias)

    def group_of(self, alias: str) -> str | None:
        """The aliases holding the same data share a group: a primary, its replicas and
        a mirror analytics alias. An analytics database with models of its own is a
        group by itself."""
        role = self.roles.get(alias)
        if role is None:
            return None
        kind, dbset = role
        if kind == ANALYTICS and not dbset.analytics_is_mirror:
            return alias
        return dbset.primary


# -- parsing -------------------------------------------------------------------------------


def _is_seconds(value: Any) -> TypeGuard[float]:
    # Finite: an infinite weight or pin would crash every routed read or written request.
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _parse_replicas(primary: str, value: Any, problems: list[Problem]) -> list[tuple[str, float]]:
    where = f"{SETTING}[{primary!r}]['replicas']"
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        pairs = [(alias, 1.0) for alias in value]
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        problems.append(
            Problem(
                "E105",
                f"{where} must be a list of aliases or a dict of alias: weight, "
                f"not {type(value).__name__}.",
            )
        )
        return []
    result = []
    for alias, weight in pairs:
        if not isinstance(alias, str):
            problems.append(Problem("E105", f"{where} has a non-string alias {alias!r}."))
        elif not _is_seconds(weight):
            problems.append(
                Problem(
                    "E105",
                    f"{where}[{alias!r}] has the weight {weight!r}; a weight is a finite "
                    "number >= 0.",
                    hint="A replica with weight 0 only takes reads when the others are down.",
                )
            )
        else:
            result.append((alias, float(weight)))
    if result and not any(weight > 0 for _, weight in result):
        problems.append(Problem("E105", f"{where}: every weight is 0."))
    return result


def _parse_set(primary: str, entry: Any, problems: list[Problem]) -> DatabaseSet | None:
    where = f"{SETTING}[{primary!r}]"
    if not isinstance(entry, dict):
        problems.append(Problem("E101", f"{where} must be a dict, not {type(entry).__name__}."))
        return None
    for key in entry:
        if key not in SET_KEYS:
            close = difflib.get_close_matches(str(key), SET_KEYS, n=1)
            problems.append(
                Problem(
                    "E102",
                    f"{where} has an unknown key {key!r}."
                    + (f" Did you mean {close[0]!r}?" if close else ""),
                    hint=f"Valid keys: {', '.join(SET_KEYS)}.",
                )
            )
    replicas = _parse_replicas(primary, entry.get("replicas"), problems)
    names = [alias for alias, _ in replicas]
    for alias in sorted({a for a in names if names.count(a) > 1}):
        problems.append(Problem("E104", f"{where} lists the replica {alias!r} twice."))
    analytics = entry.get("analytics")
    if analytics is not None and not isinstance(analytics, str):
        problems.append(Problem("E106", f"{where}['analytics'] must be an alias."))
        analytics = None
    for key in LIST_KEYS:
        value = entry.get(key, [])
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            problems.append(Problem("E106", f"{where}[{key!r}] must be a list of str."))
    options: dict[str, Any] = {}
    for key, default in OPTION_DEFAULTS.items():
        value = entry.get(key, default)
        nullable = key == "max_lag"
        positive = key in ("lag_check_interval", "cooldown")
        if (value is None and nullable) or (_is_seconds(value) and (value > 0 or not positive)):
            options[key] = value if value is None else float(value)
        else:
            bound = "> 0" if positive else ">= 0"
            problems.append(
                Problem(
                    "E106",
                    f"{where}[{key!r}] must be a number of seconds {bound}"
                    + (" or None" if nullable else "")
                    + f", not {value!r}.",
                )
            )
            options[key] = default
    has_own_models = bool(entry.get("analytics_models") or entry.get("analytics_apps"))
    return DatabaseSet(
        primary=primary,
        replicas=tuple(dict.fromkeys(names)),
        weights=tuple(dict(replicas)[alias] for alias in dict.fromkeys(names)),
        analytics=analytics,
        analytics_is_mirror=not has_own_models,
        **options,
    )


def _check_aliases(sets: list[DatabaseSet], databases: dict, problems: list[Problem]) -> dict:
    roles: dict[str, tuple[str, DatabaseSet]] = {}

    def unknown(alias: str, what: str) -> None:
        close = difflib.get_close_matches(alias, list(databases), n=1)
        problems.append(
            Problem(
                "E103",
                f"{SETTING} names {alias!r} as {what}, but DATABASES has no such alias."
                + (f" Did you mean {close[0]!r}?" if close else ""),
            )
        )

    for dbset in sets:
        if dbset.primary not in databases:
            unknown(dbset.primary, "a primary")
        roles[dbset.primary] = (PRIMARY, dbset)
    alias: str | None  # a replica's, then an analytics alias (None: the set has none)
    for dbset in sets:
        for alias in dbset.replicas:
            if alias not in databases:
                unknown(alias, f"a replica of {dbset.primary!r}")
            if alias in roles:
                kind, other = roles[alias]
                problems.append(
                    Problem(
                        "E104",
                        f"{alias!r} is listed as a replica of {dbset.primary!r} but is "
                        f"already the {kind} of {other.primary!r}.",
                        hint="Each alias plays one part: a primary, or a replica of one primary.",
                    )
                )
            else:
                roles[alias] = (REPLICA, dbset)
    for dbset in sets:
        alias = dbset.analytics
        if alias is None:
            continue
        if alias not in databases:
            unknown(alias, f"the analytics database of {dbset.primary!r}")
        if alias in roles and roles[alias][0] == PRIMARY:
            problems.append(
                Problem(
                    "E104",
                    f"The analytics database of {dbset.primary!r} is {alias!r}, a primary.",
                    hint="Long analytics queries belong on a replica or a separate database.",
                )
            )
        elif not dbset.analytics_is_mirror and alias in roles:
            problems.append(
                Problem(
                    "E109",
                    f"{alias!r} holds analytics models of {dbset.primary!r} but is also "
                    f"a replica: a replica is read-only and has no tables of its own.",
                )
            )
        roles.setdefault(alias, (ANALYTICS, dbset))
    return roles


def _check_claims(
    raw: dict[str, Any], sets: dict[str, DatabaseSet], problems: list[Problem]
) -> dict[str, Route]:
    claims: dict[str, Route] = {}
    for primary, entry in raw.items():
        dbset = sets.get(primary)
        if dbset is None:
            continue
        for key in LIST_KEYS:
            labels = entry.get(key) or []
            if not isinstance(labels, (list, tuple)):
                continue
            analytics = key.startswith("analytics")
            if analytics and labels and dbset.analytics is None:
                problems.append(
                    Problem(
                        "E109",
                        f"{SETTING}[{primary!r}][{key!r}] is set but the set has no "
                        "'analytics' alias.",
                    )
                )
            for label in labels:
                if not isinstance(label, str):
                    continue
                is_model = "." in label
                try:
                    if is_model:
                        apps.get_model(label)
                    else:
                        apps.get_app_config(label)
                except (LookupError, ValueError):
                    kind = "model" if is_model else "app label"
                    problems.append(
                        Problem(
                            "E107",
                            f"{SETTING}[{primary!r}][{key!r}] names {label!r}, which is "
                            f"not an installed {kind}.",
                            hint="Models are written 'app_label.ModelName'; apps by label.",
                        )
                    )
                    continue
                normal = label.lower() if is_model else label
                if normal in claims:
                    problems.append(
                        Problem(
                            "E108",
                            f"{label!r} is claimed twice in {SETTING} (again by {primary!r} "
                            f"{key!r}).",
                        )
                    )
                    continue
                claims[normal] = Route(dbset, analytics)
    return claims


def parse(
    raw: Any, databases: dict[str, Any] | None = None
) -> tuple[RoutingConfig | None, list[Problem]]:
    """Parse a ``DATAFLOW_ROUTING`` value against ``databases`` (``settings.DATABASES``):
    the config (None if it has errors) and the errors found."""
    if databases is None:
        databases = settings.DATABASES
    problems: list[Problem] = []
    if not isinstance(raw, dict) or not all(isinstance(key, str) for key in raw):
        problems.append(Problem("E101", f"{SETTING} must be a dict of primary alias: dict."))
        return None, problems
    parsed = [_parse_set(primary, entry, problems) for primary, entry in raw.items()]
    sets = {dbset.primary: dbset for dbset in parsed if dbset is not None}
    roles = _check_aliases(list(sets.values()), databases, problems)
    claims = _check_claims(raw, sets, problems)
    if problems:
        return None, problems
    default_set = sets.get(DEFAULT_DB_ALIAS)
    default = Route(default_set, False) if default_set else None
    return RoutingConfig(sets=sets, claims=claims, default=default, roles=roles), problems


# -- the cached config the router reads ---------------------------------------------------

_UNSET = object()
_cached: Any = _UNSET


def get_config() -> RoutingConfig | None:
    """The parsed setting, or None when ``DATAFLOW_ROUTING`` is not set.

    Raises ImproperlyConfigured, listing the errors, when the setting is invalid.
    """
    global _cached
    config = _cached
    if config is not _UNSET:
        return config
    raw = getattr(settings, SETTING, None)
    if raw is None:
        config = None
    else:
        config, problems = parse(raw)
        if config is None:
            errors = [f"dataflow.{p.id}: {p.msg}" for p in problems]
            raise ImproperlyConfigured(f"Invalid {SETTING}:\n" + "\n".join(errors))
    _cached = config
    return config


def clear_cache() -> None:
    global _cached
    _cached = _UNSET


def _on_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting in (SETTING, "DATABASES", "INSTALLED_APPS"):
        clear_cache()


def connect_receivers() -> None:
    """Clear the cached config when a setting it depends on changes (idempotent)."""
    setting_changed.connect(_on_setting_changed, dispatch_uid="django_dataflow.routing.config")
