"""The contenders: one DATABASES alias each, all in one settings configuration.

Every contender talks to the same database through Django's stock vendor backend
underneath; they differ only in what happens when Django connects and closes:

========================  =====================================================
``persistent``            stock backend, CONN_MAX_AGE=None: one connection per
                          thread, kept across requests. The limit to beat.
``persistent+hc``         the same with CONN_HEALTH_CHECKS=True (Django's own
                          "pre-ping": a check when a request first uses it).
``nopool``                stock backend, CONN_MAX_AGE=0: connect and close per
                          request. A reference for what pooling saves.
``native``                Django's PostgreSQL pool (OPTIONS["pool"], psycopg_pool).
``native+check``          the same with CONN_HEALTH_CHECKS=True, which Django
                          turns into psycopg_pool's ``check`` on every getconn.
``dbcp``                  django-db-connection-pool (SQLAlchemy QueuePool),
                          PRE_PING=False.
``dbcp+preping``          the same with its default PRE_PING=True.
``ours``                  django_dataflow, pool_pre_ping=False.
``ours+transaction``      django_dataflow, pool_pre_ping=False,
                          pool_scope="transaction": the connection goes back
                          after each autocommit query.
``ours+preping``          django_dataflow, pool_pre_ping=True with the default
                          bypass window (a connection idle < 0.5 s is not pinged).
``ours+ping-always``      pool_pre_ping=True, pool_pre_ping_bypass=0: a ping on
                          every checkout, to show what a real ping costs.
========================  =====================================================

A contender that cannot run (driver or package missing, vendor not supported, server
down) stays in the list with ``unavailable`` set to the reason and is reported as n/a.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.servers import SQLITE_PATH, ServerParams, server_params

VENDORS = ("postgresql", "mysql", "sqlite")
VENDOR_PREFIX = {"postgresql": "pg", "mysql": "my", "sqlite": "lite"}
STOCK_ENGINE = {
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
    "sqlite": "django.db.backends.sqlite3",
}
OUR_ENGINE = {
    "postgresql": "django_dataflow.backends.postgresql",
    "mysql": "django_dataflow.backends.mysql",
    "sqlite": "django_dataflow.backends.sqlite3",
}
DBCP_ENGINE = {
    "postgresql": "dj_db_conn_pool.backends.postgresql",
    "mysql": "dj_db_conn_pool.backends.mysql",
}
CONTENDER_KEYS = (
    "persistent",
    "persistent+hc",
    "nopool",
    "native",
    "native+check",
    "dbcp",
    "dbcp+preping",
    "ours",
    "ours+transaction",
    "ours+preping",
    "ours+ping-always",
)
# nopool opens a server connection per request (milliseconds on PostgreSQL): it gets a
# twentieth of the requests in workload (a), or it alone would take most of the run.
ITERATION_SCALE = {"nopool": 0.05}
# Reference rows are measured and shown, but no target is set on them.
REFERENCE_KEYS = {"persistent+hc", "nopool", "native+check", "dbcp+preping", "ours+ping-always"}


@dataclass(frozen=True)
class PoolShape:
    size: int = 20
    overflow: int = 30
    timeout: float = 30.0
    recycle: int = 3600

    @property
    def limit(self) -> int:
        return self.size + self.overflow


@dataclass
class Contender:
    key: str
    vendor: str
    family: str
    settings: dict[str, Any] | None
    unavailable: str | None = None
    reference: bool = False
    notes: list[str] = field(default_factory=list)
    # The spike workload's contenders are aliases of their own (another pool shape,
    # another port): their prefix is not the vendor's.
    prefix: str | None = None

    @property
    def alias(self) -> str:
        safe = self.key.replace("+", "_").replace("-", "_")
        return f"{self.prefix or VENDOR_PREFIX[self.vendor]}_{safe}"

    @property
    def available(self) -> bool:
        return self.unavailable is None


def _base_entry(vendor: str, params: ServerParams | None) -> dict[str, Any]:
    if vendor == "sqlite":
        return {"ENGINE": STOCK_ENGINE[vendor], "NAME": str(SQLITE_PATH)}
    params = params or server_params(vendor)
    assert params is not None
    return {
        "ENGINE": STOCK_ENGINE[vendor],
        "NAME": params.name,
        "USER": params.user,
        "PASSWORD": params.password,
        "HOST": params.host,
        "PORT": str(params.port),
    }


def _entry(
    vendor: str, key: str, shape: PoolShape, params: ServerParams | None
) -> tuple[str, dict[str, Any] | None, str | None]:
    """Return (family, DATABASES entry, reason it cannot run)."""
    entry = _base_entry(vendor, params)
    family = key.split("+")[0]
    if family == "persistent":
        entry["CONN_MAX_AGE"] = None
        entry["CONN_HEALTH_CHECKS"] = key == "persistent+hc"
    elif family == "nopool":
        entry["CONN_MAX_AGE"] = 0
    elif family == "native":
        if vendor != "postgresql":
            return family, None, "Django's native pool is PostgreSQL-only"
        entry["CONN_MAX_AGE"] = 0
        entry["CONN_HEALTH_CHECKS"] = key == "native+check"
        entry["OPTIONS"] = {
            "pool": {
                "min_size": shape.size,
                "max_size": shape.limit,
                "timeout": shape.timeout,
                "max_lifetime": float(shape.recycle),
            }
        }
    elif family == "dbcp":
        if vendor not in DBCP_ENGINE:
            return family, None, "django-db-connection-pool has no SQLite backend"
        entry["ENGINE"] = DBCP_ENGINE[vendor]
        entry["CONN_MAX_AGE"] = 0
        entry["POOL_OPTIONS"] = {
            "POOL_SIZE": shape.size,
            "MAX_OVERFLOW": shape.overflow,
            "RECYCLE": shape.recycle,
            "TIMEOUT": shape.timeout,
            "PRE_PING": key == "dbcp+preping",
        }
    elif family == "ours":
        entry["ENGINE"] = OUR_ENGINE[vendor]
        entry["CONN_MAX_AGE"] = 0
        entry["POOL"] = {
            "pool_size": shape.size,
            "pool_max_overflow": shape.overflow,
            "pool_recycle": shape.recycle,
            "pool_pre_ping": key in ("ours+preping", "ours+ping-always"),
            "pool_timeout": shape.timeout,
        }
        if key == "ours+transaction":
            entry["POOL"]["pool_scope"] = "transaction"
        if key == "ours+ping-always":
            entry["POOL"]["pool_pre_ping_bypass"] = 0
    else:  # pragma: no cover - guarded by CONTENDER_KEYS
        raise ValueError(key)
    return family, entry, None


def build_contenders(
    vendors: list[str],
    keys: list[str] | None,
    shape: PoolShape,
    params: dict[str, ServerParams | None],
) -> list[Contender]:
    """One contender per vendor and key; ``params`` are the servers' client parameters."""
    chosen = keys or list(CONTENDER_KEYS)
    contenders = []
    for vendor in vendors:
        for key in chosen:
            family, entry, reason = _entry(vendor, key, shape, params.get(vendor))
            contenders.append(
                Contender(
                    key=key,
                    vendor=vendor,
                    family=family,
                    settings=entry,
                    unavailable=reason,
                    reference=key in REFERENCE_KEYS,
                )
            )
    return contenders


def build_spike_contenders(
    keys: list[str] | None, shape: PoolShape, params: ServerParams, proxy_port: int
) -> list[Contender]:
    """The spike workload's contenders: PostgreSQL through the delaying proxy's port."""
    from benchmarks.spike import SPIKE_FAMILIES

    chosen = [k for k in SPIKE_FAMILIES if keys is None or k in keys]
    proxied = ServerParams(
        host="127.0.0.1",
        port=proxy_port,
        user=params.user,
        password=params.password,
        name=params.name,
    )
    contenders = build_contenders(["postgresql"], chosen, shape, {"postgresql": proxied})
    for contender in contenders:
        contender.prefix = "pgspike"
    return contenders


def check_imports(contenders: list[Contender]) -> None:
    """After django.setup(): mark contenders whose engine cannot be imported."""
    for contender in contenders:
        if contender.available and contender.settings is not None:
            engine = contender.settings["ENGINE"]
            try:
                importlib.import_module(f"{engine}.base")
            except Exception as exc:
                reason = f"{engine} cannot be imported: {type(exc).__name__}: {exc}"
                contender.unavailable = reason.splitlines()[0]


def databases_setting(contenders: list[Contender]) -> dict[str, dict[str, Any]]:
    databases: dict[str, dict[str, Any]] = {"default": {}}
    for contender in contenders:
        if contender.settings is not None:
            databases[contender.alias] = contender.settings
    return databases


def run_in_fresh_thread(func: Callable[[], Any]) -> Any:
    """Run func in a new thread, which has no Django connection yet; re-raise its error."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="bench-probe")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def probe(contender: Contender) -> None:
    """Run one query through the contender; mark it unavailable with the reason if it fails."""
    if not contender.available:
        return
    from django.db import connections

    def query() -> None:
        connection = connections[contender.alias]
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        finally:
            connection.close()

    try:
        run_in_fresh_thread(query)
    except Exception as exc:
        contender.unavailable = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    finally:
        dispose(contender)


def settle(contender: Contender) -> None:
    """Called in the measuring thread after warm-up: let background pool filling finish."""
    if contender.family == "native":
        from django.db import connections

        pool = connections[contender.alias].pool
        if pool is not None:
            pool.wait(timeout=30.0)


def dispose(contender: Contender) -> None:
    """Close every connection the contender's pool holds, so the next run starts cold.

    Connections of ``persistent`` are per thread and closed by the thread that used them.
    """
    from django.db import connections

    if contender.settings is None:
        return
    if contender.family == "native":
        wrapper = connections[contender.alias]
        if contender.alias in type(wrapper)._connection_pools:
            wrapper.close_pool()
    elif contender.family == "dbcp":
        try:
            from dj_db_conn_pool.core import pool_container
        except ImportError:
            return
        pool = pool_container.pop(contender.alias, None)
        if pool is not None:
            pool.dispose()
    elif contender.family == "ours":
        _dispose_ours(contender.alias)


def _dispose_ours(alias: str) -> None:
    """Close django_dataflow's pool(s) for one alias (every fingerprint) in this process."""
    try:
        from django_dataflow.pool import registry
    except ImportError:
        return
    registry.close_pools(lambda key, _pool: key[0] == alias)
