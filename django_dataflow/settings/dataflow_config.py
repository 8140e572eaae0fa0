"""DataFlowConfig: the DataFlow guide's configuration object, turned into a DATABASES entry.

Users arrive with code like ``DataFlowConfig(database_url=..., pool_size=20, ...)``. This
module keeps that code working in a Django settings file::

    DATABASES = {"default": DataFlowConfig(database_url=..., pool_size=20).as_database()}

The URL is parsed by django-environ; pool options may also ride in its query string
(``?pool_size=20&pool_pre_ping=true``). Every value is validated when the config is built,
with the same schema (``settings/options.py``) the backends and system checks use.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from django_dataflow.settings.database_url import (
    DATABASE_URL_ENV,
    default_sqlite_path,
    mask_url,
    parse_database_url,
)
from django_dataflow.settings.engines import ENGINE_OF_VENDOR, entry_rules
from django_dataflow.settings.options import (
    ALL_OPTIONS,
    POOL_OPTIONS,
    ConfigurationError,
    InvalidValue,
    is_off,
    normalize,
    vendor_complaint,
)


class _Unset:
    """Marks a DataFlowConfig field the caller did not give (None can be a value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclasses.dataclass(kw_only=True, repr=False)
class DataFlowConfig:
    """The guide's DataFlowConfig. Fields left out take the vendor's default.

    ``database_url`` None reads the ``DATABASE_URL`` environment variable; with neither,
    the database is an SQLite file ``db.sqlite3`` in the project directory. After
    construction every field holds its effective value (None: not used by this vendor).
    Assigning a field validates it again.
    """

    database_url: str | None = None
    pool_size: int | _Unset = UNSET
    pool_max_overflow: int | _Unset = UNSET
    pool_recycle: float | _Unset | None = UNSET
    pool_pre_ping: bool | _Unset = UNSET
    pool_timeout: float | _Unset = UNSET
    statement_cache_size: int | _Unset | None = UNSET
    isolation_level: str | _Unset | None = UNSET
    check_same_thread: bool | _Unset | None = UNSET
    pool_pre_ping_bypass: float | _Unset = UNSET
    pool_overflow_idle_timeout: float | _Unset = UNSET
    pool_thread_affinity: bool | _Unset = UNSET
    pool_scope: str | _Unset = UNSET
    pool_leak_threshold: float | _Unset | None = UNSET
    pool_leak_action: str | _Unset = UNSET
    pool_leak_check_interval: float | _Unset = UNSET
    behind_transaction_pooler: bool | _Unset | None = UNSET
    pool_reset_on_return: bool | _Unset | None = UNSET

    def __post_init__(self) -> None:
        keywords = {
            name: getattr(self, name) for name in ALL_OPTIONS if getattr(self, name) is not UNSET
        }
        for name, value in keywords.items():
            try:
                keywords[name] = normalize(ALL_OPTIONS[name], value)
            except InvalidValue as complaint:
                raise ConfigurationError(f"DataFlowConfig: {name} {complaint}.") from None
        source, url = self._locate_database()
        from_url: dict[str, Any]
        if url is None:
            vendor, entry, from_url = "sqlite", {"NAME": str(default_sqlite_path())}, {}
        else:
            vendor, entry, from_url = parse_database_url(url, source)
        for name, value in keywords.items():
            if name in from_url and from_url[name] != value:
                raise ConfigurationError(
                    f"DataFlowConfig: {name}={value!r} is given both as a keyword and, as "
                    f"{from_url[name]!r}, in {source}'s query string. Keep one of them."
                )
        given = {**from_url, **keywords}
        for name, value in given.items():
            option = ALL_OPTIONS[name]
            if not option.applies_to(vendor) and not is_off(value):
                where = "in the URL" if name in from_url else "given"
                raise ConfigurationError(
                    f"DataFlowConfig: {name} ({where}) {vendor_complaint(option, vendor)}. "
                    "Remove it." + entry_rules(vendor).advice(name)
                )
        for name, option in ALL_OPTIONS.items():
            effective = given.get(name, option.defaults.get(vendor))
            object.__setattr__(self, name, effective if option.applies_to(vendor) else None)
        # Set past __setattr__, which would validate them as fields.
        self._vendor: str
        self._source: str
        self._url_entry: dict[str, Any]
        self._keywords: frozenset[str]
        self._given: frozenset[str]
        object.__setattr__(self, "_vendor", vendor)
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_url_entry", entry)
        object.__setattr__(self, "_keywords", frozenset(keywords))
        object.__setattr__(self, "_given", frozenset(given))
        self._check_combinations()

    def _locate_database(self) -> tuple[str, str | None]:
        """(how to name the URL's origin in messages, the URL or None for the default)."""
        if self.database_url is not None:
            if not isinstance(self.database_url, str):
                raise ConfigurationError(
                    "DataFlowConfig: database_url must be a URL string such as "
                    "'postgres://user:password@host/name', not "
                    f"{type(self.database_url).__name__}."
                )
            return "database_url", self.database_url
        from_environment = os.environ.get(DATABASE_URL_ENV, "").strip()
        if from_environment:
            return f"the {DATABASE_URL_ENV} environment variable", from_environment
        return "the default SQLite database", None

    def _check_combinations(self) -> None:
        if self.check_same_thread is True:
            raise ConfigurationError(
                "DataFlowConfig: check_same_thread=True cannot work with a pool: a pooled "
                "SQLite connection is used by whichever thread borrows it next (Django "
                "forces check_same_thread=False for the same reason). Leave it out or "
                "set it to False."
            )
        if self.behind_transaction_pooler and self.statement_cache_size:
            raise ConfigurationError(
                f"DataFlowConfig: statement_cache_size={self.statement_cache_size} cannot "
                "work with behind_transaction_pooler=True: a transaction-mode pooler "
                "hands each transaction to any server session, where a statement prepared "
                "on another session does not exist. Set statement_cache_size=0."
            )
        url_threshold = (self._url_entry.get("OPTIONS") or {}).get("prepare_threshold")
        if self.behind_transaction_pooler and url_threshold is not None:
            raise ConfigurationError(
                f"DataFlowConfig: prepare_threshold={url_threshold!r} in {self._source} "
                "cannot work with behind_transaction_pooler=True (prepared statements do "
                "not survive a transaction-mode pooler). Remove it from the URL."
            )

    def __setattr__(self, name: str, value: Any) -> None:
        if "_keywords" not in self.__dict__ or name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name != "database_url" and name not in ALL_OPTIONS:
            raise AttributeError(f"DataFlowConfig has no field {name!r}.")
        # Rebuild from what the caller gave, plus this assignment: the guide's
        # ``config.pool_recycle = 3500`` is validated exactly like a keyword.
        fields = {field: getattr(self, field) for field in self._keywords}
        fields[name] = value
        url = value if name == "database_url" else self.database_url
        fields.pop("database_url", None)
        rebuilt = DataFlowConfig(database_url=url, **fields)
        self.__dict__.update(rebuilt.__dict__)

    def __repr__(self) -> str:
        shown = [f"database_url={mask_url(self.database_url)!r}"] if self.database_url else []
        shown += [f"{name}={getattr(self, name)!r}" for name in ALL_OPTIONS]
        return f"DataFlowConfig({', '.join(shown)})"

    @property
    def vendor(self) -> str:
        """The vendor, "postgresql", "mysql" or "sqlite" (the guide's ``db.dialect``)."""
        return self._vendor

    @property
    def pool_options(self) -> dict[str, Any]:
        """The entry's ``POOL`` dict: every pool option this vendor uses, effective values."""
        return {
            name: getattr(self, name)
            for name, option in POOL_OPTIONS.items()
            if option.applies_to(self._vendor)
        }

    def as_database(self, **overrides: Any) -> dict[str, Any]:
        """A DATABASES entry with our ENGINE for this config.

        ``overrides`` are further entry keys (``TEST``, ``ATOMIC_REQUESTS`` …); an
        ``OPTIONS`` dict is merged into the generated one.
        """
        entry: dict[str, Any] = dict(self._url_entry)
        entry["ENGINE"] = ENGINE_OF_VENDOR[self._vendor]
        entry["CONN_MAX_AGE"] = 0  # the pool keeps connections; see dataflow.E005
        driver_options = dict(entry.get("OPTIONS") or {})
        driver_options.update(self._driver_options(entry))
        if self.behind_transaction_pooler:
            entry["DISABLE_SERVER_SIDE_CURSORS"] = True
        if "POOL" in overrides:
            raise ConfigurationError(
                "DataFlowConfig.as_database(POOL=...): set pool options as DataFlowConfig "
                "fields, e.g. DataFlowConfig(pool_size=20), so they are validated."
            )
        if overrides.get("CONN_MAX_AGE", 0) != 0:
            raise ConfigurationError(
                f"DataFlowConfig.as_database(CONN_MAX_AGE={overrides['CONN_MAX_AGE']!r}): a "
                "pooled entry keeps CONN_MAX_AGE at 0; the pool keeps connections open."
            )
        driver_options.update(overrides.pop("OPTIONS", None) or {})
        entry.update(overrides)
        entry["OPTIONS"] = driver_options
        entry["POOL"] = self.pool_options
        return entry

    def _driver_options(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The OPTIONS this config adds for its vendor (what the URL gave comes first)."""
        # After __post_init__ every field holds its effective value, none UNSET.
        assert not isinstance(self.isolation_level, _Unset)
        assert not isinstance(self.statement_cache_size, _Unset)
        return entry_rules(self._vendor).driver_options(
            entry["NAME"],
            entry.get("OPTIONS") or {},
            self.isolation_level if "isolation_level" in self._given else None,
            self.statement_cache_size or 0,
        )
