"""``DATABASE_URL`` parsing: a URL into a DATABASES entry plus our options.

The URL is parsed by django-environ; pool options may also ride in its query string
(``?pool_size=20&pool_pre_ping=true``) and are validated with the POOL schema.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import environ

from django_dataflow.settings.engines import BY_VENDOR, ENGINE_OF_VENDOR
from django_dataflow.settings.options import (
    ALL_OPTIONS,
    FALSE_WORDS,
    TRUE_WORDS,
    ConfigurationError,
    InvalidValue,
    parse_text,
)

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


# Django's boolean entry keys django-environ lifts out of the query string (as text).
URL_BOOLEAN_KEYS = (
    "ATOMIC_REQUESTS",
    "AUTOCOMMIT",
    "CONN_HEALTH_CHECKS",
    "DISABLE_SERVER_SIDE_CURSORS",
)


# Query parameters that hold a secret (psycopg's password and sslpassword, mysqlclient's
# passwd, a token ...): their values are masked too.
SECRET_QUERY = re.compile(
    r"([?&;](?:[^=&#;]*(?:pass|pwd|secret|token|credential)[^=&#;]*)=)[^&#;]*", re.IGNORECASE
)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ***, for repr and messages."""
    # Up to the last "@": a password may hold a raw "@" (it parses), or a raw "/"
    # (refused, but the repr of what was given must not show it either).
    masked = re.sub(r"(//[^/@:]*:).*@", r"\1***@", url)
    # And in the query string: ?password=, ?sslpassword=, ?passwd= and their kin.
    return SECRET_QUERY.sub(r"\1***", masked)


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
    has_server = BY_VENDOR[vendor].has_server
    if not has_server and parts.netloc not in ("", ":memory:"):
        raise ConfigurationError(
            f"{source}: an SQLite URL has no host part. Write sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite://:memory:."
        )
    beyond_host = url.strip().split("://", 1)[1][len(parts.netloc) :]
    if has_server and "@" not in parts.netloc and "@" in beyond_host:
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
    plain = f"{BY_VENDOR[vendor].environ_scheme}://{re.split(r'[?#]', after_scheme, maxsplit=1)[0]}"
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
    if "%" in str(entry.get("HOST", "")):
        # A Unix socket directory (%2F or %2f), an IPv6 zone id (fe80::1%25eth0): the
        # host is percent-decoded, in either case, as dj-database-url does.
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


def default_sqlite_path() -> Path:
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
