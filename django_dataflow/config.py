"""DataFlowConfig: the DataFlow guide's configuration object, turned into a DATABASES entry.

Users arrive with code like ``DataFlowConfig(database_url=..., pool_size=20, ...)``. This
module keeps that code working in a Django settings file::

    DATABASES = {"default": DataFlowConfig(database_url=..., pool_size=20).as_database()}

The URL is parsed by django-environ; pool options may also ride in its query string
(``?pool_size=20&pool_pre_ping=true``). Every value is validated when the config is built,
with the same schema (``django_dataflow.options``) the backends and system checks use.
The sizing helpers follow the guide's "Dynamic Pool Sizing" and "Size Pool Appropriately".
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import environ

from django_dataflow.options import (
    ALL_OPTIONS,
    FALSE_WORDS,
    POOL_OPTIONS,
    TRUE_WORDS,
    ConfigurationError,
    InvalidValue,
    is_off,
    normalize,
    parse_text,
    vendor_complaint,
)
from django_dataflow.startup import ENGINE_OF_VENDOR

DATABASE_URL_ENV = "DATABASE_URL"
DEFAULT_SQLITE_FILE = "db.sqlite3"

# URL scheme -> vendor. A SQLAlchemy driver suffix ("postgresql+psycopg") is dropped:
# the driver is always psycopg 3 / mysqlclient / sqlite3.
SCHEMES = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "pgsql": "postgresql",
    "psql": "postgresql",
    "mysql": "mysql",
    "mysql2": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
}

# The scheme handed to django-environ, which picks the stock backend's quirks by it.
SCHEMES_FOR_ENVIRON = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}

# On SQLite the pool lets several threads use one file at once: WAL lets readers run
# beside the writer, and BEGIN IMMEDIATE takes the write lock up front, so two
# transactions never deadlock upgrading read locks ("database is locked").
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
    "transaction_mode": "IMMEDIATE",
}
# psycopg's own default: a query is prepared on its 5th execution.
PREPARE_THRESHOLD = 5

# Django's boolean entry keys django-environ lifts out of the query string (as text).
URL_BOOLEAN_KEYS = (
    "ATOMIC_REQUESTS",
    "AUTOCOMMIT",
    "CONN_HEALTH_CHECKS",
    "DISABLE_SERVER_SIDE_CURSORS",
)


class _Unset:
    """Marks a DataFlowConfig field the caller did not give (None can be a value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _mask(url: str) -> str:
    """``url`` with its password replaced by ***, for repr and messages."""
    # Up to the last "@": a password may hold a raw "@" (it parses), or a raw "/"
    # (refused, but the repr of what was given must not show it either).
    return re.sub(r"(//[^/@:]*:).*@", r"\1***@", url)


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
    pool_leak_threshold: float | _Unset | None = UNSET
    pool_leak_action: str | _Unset = UNSET
    pool_leak_check_interval: float | _Unset = UNSET
    behind_transaction_pooler: bool | _Unset | None = UNSET

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
        if url is None:
            vendor, entry, from_url = "sqlite", {"NAME": str(_default_sqlite_path())}, {}
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
                    "Remove it." + _vendor_advice(name, vendor, value)
                )
        for name, option in ALL_OPTIONS.items():
            effective = given.get(name, option.defaults.get(vendor))
            object.__setattr__(self, name, effective if option.applies_to(vendor) else None)
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
        shown = [f"database_url={_mask(self.database_url)!r}"] if self.database_url else []
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
        given = entry.get("OPTIONS") or {}
        added: dict[str, Any] = {}
        if self._vendor == "sqlite":
            if entry["NAME"] != ":memory:" and not str(entry["NAME"]).startswith("file:"):
                added.update({key: v for key, v in SQLITE_OPTIONS.items() if key not in given})
            return added
        if "isolation_level" in self._given:
            added["isolation_level"] = _isolation_option(self._vendor, self.isolation_level)
        if self.statement_cache_size:
            # Django's default cursors bind parameters on the client and never prepare.
            added["server_side_binding"] = True
            added["prepare_threshold"] = given.get("prepare_threshold", PREPARE_THRESHOLD)
        return added


def _vendor_advice(name: str, vendor: str, value: Any) -> str:
    if name == "isolation_level" and vendor == "sqlite":
        return (
            " SQLite transactions are always serializable; to choose how a transaction "
            "takes its locks, pass OPTIONS={'transaction_mode': ...} to as_database()."
        )
    return ""


def _isolation_option(vendor: str, level: str) -> Any:
    """``level`` ("READ_COMMITTED") as Django's backend for ``vendor`` expects it."""
    if vendor == "mysql":
        return level.lower().replace("_", " ")
    try:
        from psycopg import IsolationLevel
    except ImportError:  # the backend will say psycopg is missing; keep settings loadable
        return PSYCOPG_ISOLATION_LEVELS[level]
    return IsolationLevel[level]


# psycopg.IsolationLevel's values, which Django also accepts.
PSYCOPG_ISOLATION_LEVELS = {
    "READ_UNCOMMITTED": 1,
    "READ_COMMITTED": 2,
    "REPEATABLE_READ": 3,
    "SERIALIZABLE": 4,
}


# -- DATABASE_URL ------------------------------------------------------------------------


def parse_database_url(url: str, source: str = "database_url") -> tuple[str, dict, dict]:
    """Split a database URL into (vendor, entry keys from django-environ, our options).

    Our options (``pool_size`` … ``isolation_level``) are taken out of the query string
    and validated; the rest of the query is the driver's OPTIONS, as django-environ reads
    it. Messages name ``source``, never the URL (it holds a password).
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        parts = None
    if parts is None or not parts.scheme or "//" not in url:
        raise ConfigurationError(
            f"{source} is not a database URL; expected the form "
            "'postgres://user:password@host:port/name' (or mysql://, sqlite:///path)."
        )
    vendor = SCHEMES.get(parts.scheme.lower().split("+", 1)[0])
    if vendor is None:
        raise ConfigurationError(
            f"{source} has the scheme {parts.scheme!r}, which has no django-dataflow "
            f"backend. Use one of: {', '.join(f'{name}://' for name in SCHEMES)}."
        )
    if vendor == "sqlite" and parts.netloc not in ("", ":memory:"):
        raise ConfigurationError(
            f"{source}: an SQLite URL has no host part. Write sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite://:memory:."
        )
    beyond_host = url.strip().split("://", 1)[1][len(parts.netloc) :]
    if vendor != "sqlite" and "@" not in parts.netloc and "@" in beyond_host:
        # A "/", "#" or "?" in the password ended the host part early, and what follows
        # parsed (a password starting with digits reads as a port): the "@" that ends
        # the password is left in the path. Never a database name: refuse, saying nothing.
        raise ConfigurationError(
            f"{source} could not be parsed: percent-encode the characters / # ? @ : in "
            "the user name and password (e.g. / as %2F)."
        )
    ours: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    for key, text in parse_qsl(parts.query, keep_blank_values=True):
        if key in ALL_OPTIONS:
            if key in ours:
                raise ConfigurationError(f"{source}: query parameter {key!r} is given twice.")
            try:
                ours[key] = parse_text(ALL_OPTIONS[key], text)
            except InvalidValue as complaint:
                raise ConfigurationError(
                    f"{source}: query parameter {key!r} {complaint}."
                ) from None
            continue
        close = difflib.get_close_matches(key.lower(), list(ALL_OPTIONS), n=1, cutoff=0.85)
        if key.lower().startswith("pool_") or close:
            nearest = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"{source}: query parameter {key!r} is not a django-dataflow option.{nearest} "
                f"Valid options: {', '.join(sorted(ALL_OPTIONS))}."
            )
        rest.append((key, text))
    # Rebuilt by hand: urlunsplit turns sqlite:////abs/path into sqlite://abs/path.
    after_scheme = url.strip().split("://", 1)[1]
    plain = f"{SCHEMES_FOR_ENVIRON[vendor]}://{re.split(r'[?#]', after_scheme, maxsplit=1)[0]}"
    if rest:
        plain += "?" + urlencode(rest)
    try:
        entry = environ.Env.db_url_config(plain, engine=ENGINE_OF_VENDOR[vendor])
    except ValueError:
        # Typically a "/", "#" or "?" in the password cut the URL short, and the parser
        # complains about a "port" that is part of the password: never repeat it.
        raise ConfigurationError(
            f"{source} could not be parsed: check the port, and percent-encode the "
            f"characters / # ? @ : in the user name and password (e.g. / as %2F)."
        ) from None
    entry.pop("ENGINE", None)
    if str(entry.get("HOST", "")).startswith("%2F"):  # a Unix socket directory
        entry["HOST"] = unquote(entry["HOST"])
    _check_url_entry(entry, source)
    return vendor, entry, ours


def _check_url_entry(entry: dict[str, Any], source: str) -> None:
    """Normalise and refuse what django-environ lifted from the query into the entry."""
    for key in URL_BOOLEAN_KEYS:
        value = entry.get(key)
        if value in (0, 1) and not isinstance(value, bool):  # "?autocommit=1"
            entry[key] = bool(value)
        elif isinstance(value, str):
            word = value.strip().lower()
            if word not in TRUE_WORDS | FALSE_WORDS:
                raise ConfigurationError(
                    f"{source}: query parameter {key.lower()!r} must be true or false, "
                    f"not {value!r}."
                )
            entry[key] = word in TRUE_WORDS
    max_age = entry.pop("CONN_MAX_AGE", 0)
    if max_age != 0:
        raise ConfigurationError(
            f"{source}: query parameter 'conn_max_age'={max_age!r} asks for persistent "
            "connections, but django-dataflow pools them. Remove it from the URL and size "
            "the pool with pool_size instead."
        )


def _default_sqlite_path() -> Path:
    """``db.sqlite3`` in the project: the directory holding the settings' top-level
    package (where manage.py lives in Django's layout), else the working directory."""
    module_name = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    top = sys.modules.get(module_name.split(".", 1)[0]) if module_name else None
    location = getattr(top, "__file__", None)
    if location:
        path = Path(location).resolve()
        # A package's __init__.py sits one level deeper than a plain settings module.
        project = path.parent.parent if path.name == "__init__.py" else path.parent
        return project / DEFAULT_SQLITE_FILE
    return Path.cwd().resolve() / DEFAULT_SQLITE_FILE


# -- sizing ------------------------------------------------------------------------------

WORKLOAD_FACTORS = {"balanced": 1.0, "read_heavy": 1.5, "write_heavy": 0.75}
MINIMUM_POOL_SIZE = 10


def available_cpus() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count); 4 if
    unknown, as in the guide."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 4
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 4
    return os.cpu_count() or 4


def recommended_pool_size(
    workload: str = "balanced", cpu_count: int | None = None, spindles: int = 1
) -> int:
    """The guide's pool size: ``cores * 2 + spindles``, x1.5 for read-heavy, x0.75 for
    write-heavy work, at least 10. ``cpu_count`` defaults to this process's CPUs;
    ``spindles`` is 1 for SSDs."""
    key = str(workload).strip().lower().replace("-", "_")
    if key not in WORKLOAD_FACTORS:
        raise ValueError(
            f"recommended_pool_size: workload must be one of "
            f"{', '.join(map(repr, WORKLOAD_FACTORS))}, not {workload!r}."
        )
    cores = available_cpus() if cpu_count is None else cpu_count
    for name, value, minimum in (("cpu_count", cores, 1), ("spindles", spindles, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(
                f"recommended_pool_size: {name} must be a whole number >= {minimum}, not {value!r}."
            )
    size = int((cores * 2 + spindles) * WORKLOAD_FACTORS[key])
    return max(size, MINIMUM_POOL_SIZE)


def get_pool_config(
    *,
    database_url: str | None = None,
    environment: str | None = None,
    cpu_count: int | None = None,
) -> DataFlowConfig:
    """The guide's ``get_pool_config()``: pools sized by the deployment environment.

    With ``environment`` (default: the ``ENVIRONMENT`` variable) "production": 4
    connections per CPU plus 6 per CPU of overflow, recycled every 30 minutes, pre-ping
    on. Otherwise a small pool: 5 + 10, recycled hourly.
    """
    if environment is None:
        environment = os.environ.get("ENVIRONMENT", "")
    cores = available_cpus() if cpu_count is None else cpu_count
    if environment == "production":
        return DataFlowConfig(
            database_url=database_url,
            pool_size=cores * 4,
            pool_max_overflow=cores * 6,
            pool_recycle=1800,
            pool_pre_ping=True,
        )
    return DataFlowConfig(
        database_url=database_url, pool_size=5, pool_max_overflow=10, pool_recycle=3600
    )
