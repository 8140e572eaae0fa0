"""PostgreSQL (psycopg 3) rules for a DATABASES entry: prepared statements, isolation
levels, Django's own pool option, transaction-mode poolers. See ``backends/entry.py``."""

from __future__ import annotations

from typing import Any

from django_dataflow.backends.entry import EntryRules
from django_dataflow.settings.problems import Problem

# psycopg's own default: a query is prepared on its 5th execution.
PREPARE_THRESHOLD = 5
# psycopg.IsolationLevel's values, which Django also accepts.
PSYCOPG_ISOLATION_LEVELS = {
    "READ_UNCOMMITTED": 1,
    "READ_COMMITTED": 2,
    "REPEATABLE_READ": 3,
    "SERIALIZABLE": 4,
}


class PostgreSQLEntry(EntryRules):
    def driver_options(
        self, name: Any, given: dict[str, Any], isolation_level: str | None, cache_size: int
    ) -> dict[str, Any]:
        added = super().driver_options(name, given, isolation_level, cache_size)
        if cache_size:
            # Django's default cursors bind parameters on the client and never prepare.
            added["server_side_binding"] = True
            added["prepare_threshold"] = given.get("prepare_threshold", PREPARE_THRESHOLD)
        return added

    def isolation_option(self, level: str) -> Any:
        try:
            from psycopg import IsolationLevel
        except ImportError:  # the backend will say psycopg is missing; keep settings loadable
            return PSYCOPG_ISOLATION_LEVELS[level]
        return IsolationLevel[level]

    def conflicts(
        self,
        entry: str,
        settings_dict: dict[str, Any],
        driver_options: dict[str, Any],
        options: dict[str, Any],
    ) -> list[Problem]:
        problems = []
        if driver_options.get("pool"):
            problems.append(
                Problem(
                    "native_pool_option",
                    f"{entry} sets OPTIONS['pool'], Django's own PostgreSQL pool, but its ENGINE "
                    "already pools connections. Two pools would fight over every connection, "
                    "and Django skips its per-connection setup when OPTIONS['pool'] is set.",
                    "Remove OPTIONS['pool'] and move its sizes to POOL: min_size -> pool_size, "
                    "max_size -> pool_size + pool_max_overflow, timeout -> pool_timeout, "
                    "max_lifetime -> pool_recycle (docs/migrating.md).",
                )
            )
        cache_size = options["statement_cache_size"]
        prepare_threshold = driver_options.get("prepare_threshold")
        if options["behind_transaction_pooler"]:
            if cache_size or prepare_threshold is not None:
                what = (
                    f"POOL['statement_cache_size']={cache_size}"
                    if cache_size
                    else f"OPTIONS['prepare_threshold']={prepare_threshold!r}"
                )
                problems.append(
                    Problem(
                        "prepared_statements_behind_pooler",
                        f"{entry} sets POOL['behind_transaction_pooler']=True and {what}. A "
                        "transaction-mode pooler hands each transaction to any server session, "
                        "so a statement prepared on one session is missing on the next.",
                        "Remove statement_cache_size / prepare_threshold. (PgBouncer >= 1.21 "
                        "with max_prepared_statements can carry protocol-level prepared "
                        "statements: if yours does, set behind_transaction_pooler=False.)",
                    )
                )
            if settings_dict.get("DISABLE_SERVER_SIDE_CURSORS") is not True:
                problems.append(
                    Problem(
                        "server_side_cursors_behind_pooler",
                        f"{entry} sets POOL['behind_transaction_pooler']=True but not "
                        "DISABLE_SERVER_SIDE_CURSORS=True. QuerySet.iterator() outside a "
                        "transaction opens a server-side cursor that a transaction-mode pooler "
                        "cannot keep.",
                        "Add 'DISABLE_SERVER_SIDE_CURSORS': True to the entry (DataFlowConfig "
                        "does this for you).",
                        severity="warning",
                    )
                )
        elif cache_size and (
            driver_options.get("server_side_binding") is not True or prepare_threshold is None
        ):
            problems.append(
                Problem(
                    "statement_cache_unused",
                    f"{entry} sets POOL['statement_cache_size']={cache_size}, but Django "
                    "prepares no statements on this entry: that needs "
                    "OPTIONS['server_side_binding']=True and an integer "
                    "OPTIONS['prepare_threshold'].",
                    "Add 'server_side_binding': True and 'prepare_threshold': 5 to OPTIONS, or "
                    "build the entry with DataFlowConfig(statement_cache_size=...), which does.",
                    severity="warning",
                )
            )
        return problems


RULES = PostgreSQLEntry()
