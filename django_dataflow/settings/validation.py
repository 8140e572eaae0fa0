"""What is wrong with a DATABASES entry of ours, and its effective POOL options.

Validation reports *problems* instead of raising, so ``manage.py check`` can list them all;
``resolve_pool_options`` (used when a connection wrapper is built) raises the first error.
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
    unknown_option_hint,
    vendor_complaint,
)
from django_dataflow.settings.problems import Problem

# -- DATABASES entries ---------------------------------------------------------------------


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
                options[name] = normalize(option, given[name])
            except InvalidValue as complaint:
                problems.append(
                    Problem(
                        "invalid_value",
                        f"{_where(alias, name)} {complaint}.",
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
    for key in driver_options:
        if key in POOL_OPTIONS:
            problems.append(
                Problem(
                    "pool_option_in_options",
                    f"{entry}['OPTIONS'] has {key!r}, a pool option: OPTIONS goes to the "
                    "driver, which refuses it.",
                    f"Move {key!r} from OPTIONS to the entry's POOL.",
                )
            )
    problems.extend(entry_rules(vendor).conflicts(entry, settings_dict, driver_options, options))
    return problems


def resolve_pool_options(alias: str, vendor: str, settings_dict: dict[str, Any]) -> dict[str, Any]:
    """The effective pool options of one DATABASES entry: validated, with defaults.

    Raises ConfigurationError (an ImproperlyConfigured) for the first error, naming the
    offending key and the fix. Warnings are left to the system checks.
    """
    inspection = inspect_pool_options(alias, vendor, settings_dict)
    if inspection.errors:
        raise ConfigurationError(str(inspection.errors[0]))
    return inspection.options


def validate_pooled_databases() -> None:
    """Raise ImproperlyConfigured naming the first bad POOL key of any DATABASES entry.

    AppConfig.ready does *not* call it: the system checks report every problem at once
    (see docs/design.md, "Configuration: errors vs system checks"); a project that wants
    its WSGI process to refuse to boot calls it from wsgi.py.
    """
    for alias, vendor, settings_dict in pooled_entries(settings.DATABASES):
        resolve_pool_options(alias, vendor, settings_dict)
