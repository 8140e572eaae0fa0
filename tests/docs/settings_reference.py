"""The generated tables of docs/settings.md, rendered from the schema.

``python -m tests.docs.settings_reference`` rewrites them in place; ``test_settings_reference``
fails when the page and the schema differ. Each table sits between
``<!-- generated: NAME -->`` and ``<!-- end generated -->``.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

from django_dataflow import conf
from django_dataflow.routing.config import LIST_KEYS, OPTION_DEFAULTS
from django_dataflow.settings.database_url import URL_BOOLEAN_KEYS
from django_dataflow.settings.dataflow_config import DataFlowConfig
from django_dataflow.settings.engines import VENDORS
from django_dataflow.settings.options import CONNECTION_SETTINGS, POOL_OPTIONS, PoolOption

PAGE = Path(__file__).resolve().parent.parent.parent / "docs" / "settings.md"
SECTION = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL
)

# The checks that guard an option beyond its value (E003) and its vendor (E004).
MORE_CHECKS = {
    "pool_size": "W004",
    "pool_max_overflow": "W004",
    "pool_recycle": "W003",
    "statement_cache_size": "W001, E006",
    "behind_transaction_pooler": "E006, W002",
}


def _value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value!r}`".replace("'", '"')


def _type_and_range(option: PoolOption) -> tuple[str, str]:
    if option.kind == "bool":
        return "bool", "True, False"
    if option.kind == "choice":
        return "str", ", ".join(f'`"{choice}"`' for choice in option.choices)
    if option.kind == "isolation_level":
        return "str", "READ_UNCOMMITTED, READ_COMMITTED, REPEATABLE_READ, SERIALIZABLE"
    bound = f"> {option.minimum:g}" if option.exclusive_minimum else f">= {option.minimum:g}"
    if option.kind == "int":
        return "int", bound
    kind = "seconds or None" if option.kind == "seconds_or_none" else "seconds"
    return kind, f"{bound}, finite, at most `threading.TIMEOUT_MAX`"


def _option_rows(options: dict[str, PoolOption], checks: dict[str, str]) -> list[str]:
    rows = [
        "| option | type | PostgreSQL | MySQL/MariaDB | SQLite | range | checks |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, option in options.items():
        kind, values = _type_and_range(option)
        defaults = [
            _value(option.defaults[vendor]) if option.applies_to(vendor) else "—"
            for vendor in VENDORS
        ]
        rows.append(f"| `{name}` | {kind} | {' | '.join(defaults)} | {values} | {checks[name]} |")
    return rows


def pool_options() -> list[str]:
    checks = {
        name: ", ".join(
            ["E003"]
            + (["E004"] if not all(map(option.applies_to, VENDORS)) else [])
            + ([MORE_CHECKS[name]] if name in MORE_CHECKS else [])
        )
        for name, option in POOL_OPTIONS.items()
    }
    return _option_rows(POOL_OPTIONS, checks)


def connection_settings() -> list[str]:
    return _option_rows(CONNECTION_SETTINGS, dict.fromkeys(CONNECTION_SETTINGS, "E002 in a POOL"))


def dataflow_config_fields() -> list[str]:
    rows = ["| field | what it is |", "|---|---|"]
    for field in dataclasses.fields(DataFlowConfig):
        if field.name == "database_url":
            what = (
                "the database: a URL (below); default: `DATABASE_URL`, else `sqlite:///db.sqlite3`"
            )
        elif field.name in POOL_OPTIONS:
            what = f"the `POOL` option [`{field.name}`](#pool-options)"
        else:
            what = (
                f"the connection setting [`{field.name}`](#connection-settings), "
                "written into `OPTIONS`"
            )
        rows.append(f"| `{field.name}` | {what} |")
    return rows


def url_query() -> list[str]:
    rows = ["| query parameter | becomes |", "|---|---|"]
    rows += [f'| `{name}` | `POOL["{name}"]` |' for name in POOL_OPTIONS]
    rows += [f"| `{name}` | the connection setting, in `OPTIONS` |" for name in CONNECTION_SETTINGS]
    rows += [f"| `{key.lower()}` | the entry's `{key}` (a boolean) |" for key in URL_BOOLEAN_KEYS]
    rows.append("| `conn_max_age` | refused: the pool keeps the connections (E005 in an entry) |")
    rows.append("| anything else | the driver's `OPTIONS` (`sslmode`, `connect_timeout` …) |")
    return rows


DATAFLOW_SETTINGS = {
    conf.WORKER_PROCESSES: (
        "int >= 1",
        "`WEB_CONCURRENCY`, else `1`",
        "Worker processes of the application; the connection budget counts them.",
        "E007, W004",
    ),
    conf.ROUTING: (
        "dict",
        "`None` (no routing)",
        "Read replicas, primaries and analytics per primary ([below](#dataflow_routing)).",
        "E101-E109, W101-W104",
    ),
    conf.STATS_PUBLISH: ("bool", "`True`", "Publish this process's statistics.", "E011"),
    conf.STATS_INTERVAL: (
        "seconds, > 0, finite",
        _value(conf.DEFAULT_INTERVAL),
        "Seconds between two looks at the process's pools.",
        "E011",
    ),
    conf.STATS_DIR: (
        "path",
        "per user and project, under the temporary directory",
        "Where snapshots go; also read from the environment variable of that name.",
        "E011",
    ),
    conf.CHECK_THRESHOLDS: (
        "dict of numbers >= 0",
        _value(conf.DEFAULT_THRESHOLDS),
        "Thresholds of `pool_stats --check` and the health view.",
        "E011",
    ),
    conf.METRICS_TOKEN: (
        "str",
        "`None`",
        "A bearer token that may read the statistics views.",
        "E011",
    ),
    conf.APPLICATION_NAME_PREFIX: (
        "str or None",
        _value(conf.DEFAULT_APPLICATION_NAME_PREFIX),
        "Prefix of PostgreSQL's `application_name`; `None`: set none.",
        "E011",
    ),
    conf.OPENTELEMETRY: (
        "bool",
        "`False`",
        "Report the pools' OpenTelemetry metrics `db.client.connection.*` "
        "([monitoring](monitoring.md#opentelemetry)); read when Django starts; "
        'needs `pip install "django-dataflow[opentelemetry]"`.',
        "E011, E013",
    ),
}


def dataflow_settings() -> list[str]:
    rows = ["| setting | type, range | default | meaning | checks |", "|---|---|---|---|---|"]
    rows += [
        f"| `{name}` | {kind} | {default} | {meaning} | {checks} |"
        for name, (kind, default, meaning, checks) in DATAFLOW_SETTINGS.items()
    ]
    return rows


def routing_keys() -> list[str]:
    rows = ["| key of a set | type, range | default | checks |", "|---|---|---|---|"]
    rows.append(
        "| `replicas` | list of aliases, or dict alias: weight >= 0 | `[]` "
        "| E103-E105, W102, W103 |"
    )
    rows.append("| `analytics` | alias | `None` | E103, E104, E109 |")
    rows += [f"| `{key}` | list of str | `[]` | E106-E108 |" for key in LIST_KEYS]
    for key, default in OPTION_DEFAULTS.items():
        bound = "> 0" if key in ("lag_check_interval", "cooldown") else ">= 0"
        kind = "seconds or None" if default is None else "seconds"
        rows.append(f"| `{key}` | {kind}, {bound} | {_value(default)} | E106 |")
    return rows


TABLES = {
    "pool-options": pool_options,
    "connection-settings": connection_settings,
    "dataflow-config": dataflow_config_fields,
    "url-query": url_query,
    "dataflow-settings": dataflow_settings,
    "routing-keys": routing_keys,
}


def render(text: str) -> str:
    """``text`` with every generated table rendered again."""

    def table(match: re.Match[str]) -> str:
        body = "\n".join(TABLES[match["name"]]()) + "\n"
        return f"{match[1]}{body}{match[4]}"

    return SECTION.sub(table, text)


if __name__ == "__main__":
    import django
    from django.conf import settings

    settings.configure()
    django.setup()
    PAGE.write_text(render(PAGE.read_text()))
    sys.stdout.write(f"wrote {PAGE}\n")
