"""Pooled connections say who they are, so the server's own views can be read.

A DBA looking at ``pg_stat_activity`` (or ``pool_stats --server``) should see which
sessions belong to which pool of which process. PostgreSQL has a place for it,
``application_name``; by default pooled connections set it to
``"<prefix>:<alias>:<pid>"`` (prefix ``DATAFLOW_APPLICATION_NAME_PREFIX``, default
``"django-dataflow"``; None turns it off) unless the user named the application
themselves (``OPTIONS["application_name"]``, ``-c application_name=`` in
``OPTIONS["options"]``, or the ``PGAPPNAME`` environment variable).

MySQL/MariaDB keep client-sent labels (connection attributes) only in
performance_schema, which MariaDB turns off by default, and mysqlclient cannot send
custom attributes anyway. There, each process publishes the server ids of its pooled
sessions instead (see ``monitoring.publisher``), which ``--server`` matches against the
processlist; so this function leaves MySQL parameters unchanged.

The backends call ``identify_connection`` once per pool, in the process that owns it,
on the parameters used to open its physical connections (not on the parameters that
choose the pool, so the pool's identity does not depend on the pid).
"""

from __future__ import annotations

import os
from typing import Any

from django_dataflow import conf

# PostgreSQL keeps NAMEDATALEN - 1 bytes of application_name and silently cuts the rest.
PG_NAME_MAX_BYTES = 63


def _cut(text: str, max_bytes: int) -> str:
    return text.encode()[: max(0, max_bytes)].decode(errors="ignore")


def application_name(prefix: str, alias: str, pid: int) -> str:
    """``"<prefix>:<alias>:<pid>"`` within 63 bytes: the pid is kept whole, the alias and
    then the prefix are shortened if they must be."""
    tail = f":{pid}"
    room = PG_NAME_MAX_BYTES - len(tail.encode())
    alias_part = _cut(alias, max(8, room - len(prefix.encode()) - 1))
    prefix_part = _cut(prefix, room - len(alias_part.encode()) - 1)
    return f"{prefix_part}:{alias_part}{tail}"


def user_named_application(conn_params: dict[str, Any]) -> bool:
    """Did the user choose an application_name for these PostgreSQL parameters?"""
    if conn_params.get("application_name") or os.environ.get("PGAPPNAME"):
        return True
    return "application_name" in str(conn_params.get("options") or "")


def identify_connection(
    vendor: str, alias: str, conn_params: dict[str, Any], *, pid: int | None = None
) -> dict[str, Any]:
    """``conn_params`` with this process's identity added where the vendor allows it.

    Returns a new dict (or ``conn_params`` itself when nothing is added).
    """
    if vendor != "postgresql" or user_named_application(conn_params):
        return conn_params
    prefix = conf.application_name_prefix()
    if prefix is None:
        return conn_params
    name = application_name(prefix, alias, os.getpid() if pid is None else pid)
    return {**conn_params, "application_name": name}
