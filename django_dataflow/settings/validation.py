"""What is wrong with a DATABASES entry of ours, and its effective POOL options.

Validation reports *problems* instead of raising, so ``manage.py check`` can list them all;
``resolve_pool_options`` (used when a connection wrapper is built) raises one error naming
them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from django_dataflow.settings.engines import entry_rules, pooled_entries
from django_dataflow.settings.options import (
    POOL_OPTIONS,
    ConfigurationError,
    InvalidValue,
    is_off,
    normalize,
    parse_text,
    unknown_option_hint,
    vendor_complaint,
)
from django_dataflow.settings.problems import Problem

# -- DATABASES entries ---------------------------------------------------------------------

CHECK_HINT = "(Run `manage.py check --tag dataflow` to list every problem of the settings.)"


@dataclass(frozen=True)
class Inspection:
    """The effective options of one entry (defaults where a value is missing or wrong)
    and everything wrong with it."""

    options: dict[str, Any]
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]


def _where(alias: str, key: str) -> str:
    return f"settings.DATABASES[{alias!r}]['POOL'][{key!r}]"


def inspect_pool_options(alias: str, vendor: str, settings_dict: dict[str, Any]) -> Inspection:
    """Validate the POOL (and what conflicts with it) of one DATABASES entry of ``vendor``."""
    problems: list[Problem] = []
    given = settings_dict.get("POOL")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        problems.append(
            Problem(
                "pool_not_a_dict",
                f"settings.DATABASES[{alias!r}]['POOL'] must be a dict of pool options, "
                f"not {type(given).__name__}.",
                "Write it as a dict, e.g. {'pool_size': 20, 'pool_max_overflow': 30}.",
            )
        )
        given = {}
    for key in given:
        if key not in POOL_OPTIONS:
            problems.append(
                Problem(
                    "unknown_option",
                    f"settings.DATABASES[{alias!r}]['POOL'] has an unknown option {key!r}.",
                    unknown_option_hint(key),
                )
            )
    in_pool = set(given)
    given, moved_problems = _with_pool_options_from_options(alias, settings_dict, given)
    problems.extend(moved_problems)
    options: dict[str, Any] = {}
    for name, option in POOL_OPTIONS.items():
        if not option.applies_to(vendor):
            if name in given and not is_off(given[name]):
                problems.append(
                    Problem(
                        "wrong_vendor",
                        f"{_where(alias, name)} {vendor_complaint(option, vendor)}.",
                        f"Remove {name!r} from this entry's POOL.",
                    )
                )
            continue
        options[name] = option.default_for(vendor)
        if name in given:
            try:
                value = given[name]
                # A DATABASE_URL helper leaves query parameters as text ("true", "none").
                from_options = name not in in_pool
                is_text = isinstance(value, str) and from_options
                options[name] = parse_text(option, value) if is_text else normalize(option, value)
            except InvalidValue as complaint:
                where = _where(alias, name)
                if from_options:
                    where = f"settings.DATABASES[{alias!r}]['OPTIONS'][{name!r}]"
                problems.append(
                    Problem(
                        "invalid_value",
                        f"{where} {complaint}.",
                        f"{name}: {option.help} (docs/configuration.md)",
                    )
                )
    problems.extend(_conflicts(alias, vendor, settings_dict, options))
    return Inspection(options, problems)


def _conflicts(
    alias: str, vendor: str, settings_dict: dict[str, Any], options: dict[str, Any]
) -> list[Problem]:
    """Problems between the POOL and the rest of the entry."""
    problems = []
    entry = f"settings.DATABASES[{alias!r}]"
    max_age = settings_dict.get("CONN_MAX_AGE", 0)
    if max_age != 0:
        problems.append(
            Problem(
                "conn_max_age",
                f"{entry} sets CONN_MAX_AGE={max_age!r}, but its ENGINE pools connections. "
                "The pool already keeps connections open between requests; a persistent "
                "connection would hold one pooled connection per thread forever.",
                "Remove CONN_MAX_AGE (or set it to 0) and size the pool with "
                "POOL['pool_size'] instead.",
            )
        )
    if options.get("pool_scope") == "transaction" and settings_dict.get("AUTOCOMMIT") is False:
        problems.append(
            Problem(
                "transaction_scope_without_autocommit",
                f"{entry} sets AUTOCOMMIT=False with POOL['pool_scope']='transaction'. "
                "Without autocommit every connection is always inside a transaction, so "
                "it would never go back to the pool before the end of the request.",
                "Remove AUTOCOMMIT (Django's default is True) or set "
                "POOL['pool_scope'] to 'request'.",
            )
        )
    driver_options = settings_dict.get("OPTIONS")
    if driver_options is None:
        driver_options = {}
    if not isinstance(driver_options, dict):
        problems.append(
            Problem(
                "options_not_a_dict",
                f"{entry}['OPTIONS'] must be a dict of driver options, not "
                f"{type(driver_options).__name__}.",
                "Write it as a dict, e.g. {'sslmode': 'require'} (a URL's query "
                "parameters become this dict).",
            )
        )
        return problems
    problems.extend(entry_rules(vendor).conflicts(entry, settings_dict, driver_options, options))
    return problems


def _options_dict(settings_dict: dict[str, Any]) -> dict[str, Any]:
    driver_options = settings_dict.get("OPTIONS")
    return driver_options if isinstance(driver_options, dict) else {}


def _with_pool_options_from_options(
    alias: str, settings_dict: dict[str, Any], given: dict[str, Any]
) -> tuple[dict[str, Any], list[Problem]]:
    """The POOL options of an entry, with those found in its OPTIONS added.

    django-environ's ``env.db()`` and ``dj_database_url.config()`` put every query
    parameter of a URL (``?pool_size=20``) in ``OPTIONS``. Those that are pool options
    are the pool's: they count as POOL options, the backends leave them out of the
    driver's parameters (``without_pool_options``), and an Info (dataflow.I001) says so.
    The same option in POOL with another value is an error (dataflow.E010).
    """
    driver_options = _options_dict(settings_dict)
    found = [key for key in driver_options if key in POOL_OPTIONS]
    if not found:
        return given, []
    entry = f"settings.DATABASES[{alias!r}]"
    problems = []
    merged = dict(given)
    for key in found:
        if key in given and given[key] != driver_options[key]:
            problems.append(
                Problem(
                    "pool_option_in_options",
                    f"{entry} has the pool option {key!r} both in OPTIONS "
                    f"({driver_options[key]!r}) and in POOL ({given[key]!r}).",
                    f"Keep one: remove {key!r} from OPTIONS (or from the URL's query "
                    "string) or from POOL.",
                )
            )
        else:
            merged[key] = driver_options[key]
    moved = ", ".join(repr(key) for key in found)
    problems.append(
        Problem(
            "pool_options_moved",
            f"{entry}['OPTIONS'] has the pool options {moved} (a DATABASE_URL helper such "
            "as django-environ's env.db() or dj_database_url puts a URL's query "
            "parameters there): they are used as the entry's POOL options and are not "
            "passed to the driver.",
            "Nothing to fix. In a hand-written entry, write them in POOL instead.",
            severity="info",
        )
    )
    return merged, problems


def without_pool_options(connection_params: dict[str, Any]) -> dict[str, Any]:
    """``connection_params`` (what the driver's connect() gets) without the pool options
    a DATABASE_URL helper left in OPTIONS: they are the pool's."""
    if not any(key in POOL_OPTIONS for key in connection_params):
        return connection_params
    return {key: value for key, value in connection_params.items() if key not in POOL_OPTIONS}


def resolve_pool_options(alias: str, vendor: str, settings_dict: dict[str, Any]) -> dict[str, Any]:
    """The effective pool options of one DATABASES entry: validated, with defaults.

    Raises one ConfigurationError (an ImproperlyConfigured) naming every error, each
    with its fix, and pointing to ``manage.py check --tag dataflow``. Warnings are left
    to the system checks.
    """
    inspection = inspect_pool_options(alias, vendor, settings_dict)
    errors = inspection.errors
    if len(errors) == 1:
        raise ConfigurationError(f"{errors[0]} {CHECK_HINT}")
    if errors:
        listed = "\n".join(f"  - {error}" for error in errors)
        raise ConfigurationError(
            f"settings.DATABASES[{alias!r}] has {len(errors)} problems:\n{listed}\n{CHECK_HINT}"
        )
    return inspection.options


def validate_pooled_databases() -> None:
    """Raise ImproperlyConfigured naming the first bad POOL key of any DATABASES entry.

    AppConfig.ready does *not* call it: the system checks report every problem at once
    (see docs/design.md, "Configuration: errors vs system checks"); a project that wants
    its WSGI process to refuse to boot calls it from wsgi.py.
    """
    for alias, vendor, settings_dict in pooled_entries(settings.DATABASES):
        resolve_pool_options(alias, vendor, settings_dict)
