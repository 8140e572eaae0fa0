"""``pool_stats --server`` pointed at PgBouncer's admin console: its ``SHOW POOLS``.

Behind PgBouncer in transaction mode, ``pg_stat_activity`` shows PgBouncer's server
sessions, not the application's connections. What an operator wants there is
PgBouncer's own view: per database and user, its clients (``cl_active``,
``cl_waiting``), its server sessions (``sv_active``, ``sv_idle``, ``sv_used``,
``sv_tested``, ``sv_login``) and the oldest client's wait (``maxwait``), the names
``pool_stats`` borrows for its own table.

A DATABASES alias whose NAME is ``pgbouncer`` (the admin console's database) is read
this way::

    DATABASES["pgbouncer"] = {
        "ENGINE": "django_dataflow.backends.postgresql",
        "NAME": "pgbouncer", "HOST": "pgbouncer.internal", "PORT": 6432,
        "USER": "stats",  # in PgBouncer's stats_users or admin_users
    }

    manage.py pool_stats --server --database pgbouncer

The console speaks only the simple query protocol and knows only its SHOW commands, so
it is asked on a plain psycopg connection in autocommit mode (no Django session setup),
with the alias's connection parameters and a 5 s connect timeout. A ``PgBouncerView``
prints itself (``table()``, ``to_json()``), as the database's ``ServerView`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django_dataflow.monitoring import text
from django_dataflow.monitoring.server import ServerUnavailable, stock_wrapper

ADMIN_DATABASE = "pgbouncer"
POOL_FIELDS = (
    "database",
    "user",
    "cl_active",
    "cl_waiting",
    "sv_active",
    "sv_idle",
    "sv_used",
    "sv_tested",
    "sv_login",
    "maxwait",
    "pool_mode",
)
CONFIG_KEYS = ("pool_mode", "default_pool_size", "max_client_conn", "max_db_connections")


@dataclass
class PgBouncerView:
    alias: str
    address: str
    version: str
    pools: list[dict[str, Any]]
    config: dict[str, str] = field(default_factory=dict)
    vendor: str = "pgbouncer"

    def table(self) -> str:
        """The ``--server`` table: PgBouncer's settings, then ``SHOW POOLS``."""
        settings = ", ".join(
            f"{key} {self.config[key]}" for key in CONFIG_KEYS if key in self.config
        )
        header = f"{self.version} at {self.address} (alias {self.alias!r}): {settings}"
        if not self.pools:
            return f"{header}\n\nNo pools: no client has connected through PgBouncer yet."
        rows = [
            [
                *(pool[key] for key in POOL_FIELDS if key not in ("maxwait", "pool_mode")),
                text.seconds(pool["maxwait"]),
                pool["pool_mode"],
            ]
            for pool in self.pools
        ]
        headers = [key.upper() for key in POOL_FIELDS]
        return f"{header}\n\n{text.table(headers, rows, align='ll' + 'r' * 8 + 'l')}"

    def to_json(self) -> dict[str, Any]:
        """The ``--server`` part of ``pool_stats --format json`` for this console."""
        return {
            "vendor": "pgbouncer",
            "address": self.address,
            "version": self.version,
            "config": self.config,
            "pools": self.pools,
        }


def is_admin_console(settings_dict: dict[str, Any]) -> bool:
    return str(settings_dict.get("NAME") or "") == ADMIN_DATABASE


def console_view(alias: str) -> PgBouncerView:
    """Ask PgBouncer's admin console behind ``alias``. Raises ServerUnavailable."""
    import psycopg  # the console is PostgreSQL-only: a MySQL-only install has no psycopg

    wrapper = stock_wrapper(alias)
    params = wrapper.get_connection_params()
    address = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
    try:
        with psycopg.connect(**params, autocommit=True) as connection:
            cursor = connection.cursor()
            cursor.execute("SHOW VERSION")
            row = cursor.fetchone()
            assert row is not None  # SHOW VERSION answers one row
            version = str(row[0])
            cursor.execute("SHOW CONFIG")
            config = {row[0]: str(row[1]) for row in cursor.fetchall() if row[0] in CONFIG_KEYS}
            cursor.execute("SHOW POOLS")
            assert cursor.description is not None  # SHOW POOLS answers rows
            names = [column.name for column in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except psycopg.Error as error:
        raise ServerUnavailable(
            f"Could not query PgBouncer's admin console for {alias!r} at {address}: {error}"
        ) from error
    pools = []
    for row in rows:
        if row["database"] == ADMIN_DATABASE:
            continue  # the console itself, i.e. this very query
        pool = {key: row.get(key) for key in POOL_FIELDS}
        pool["maxwait"] = float(row.get("maxwait") or 0) + float(row.get("maxwait_us") or 0) / 1e6
        pools.append(pool)
    pools.sort(key=lambda pool: (str(pool["database"]), str(pool["user"])))
    return PgBouncerView(alias, address, version, pools, config)
