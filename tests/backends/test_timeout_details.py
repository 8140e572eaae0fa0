"""A checkout timeout through Django: PoolTimeout carries the pool at the timeout, and
the log records of the pool and the backends carry it as extra fields."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError

from django_dataflow.errors import PoolTimeout
from django_dataflow.pool.errors import LOG_FIELDS
from tests.backends.helpers import make_wrapper

pytestmark = pytest.mark.django_db(transaction=True)


def test_pool_timeout_carries_the_pool_and_the_log_record_its_fields(vendor, caplog):
    options = {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 0.23}
    holder = make_wrapper(**options)
    holder.ensure_connection()
    waiter = make_wrapper(**options)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="django_dataflow.pool"),
            pytest.raises(PoolTimeout) as raised,
        ):
            waiter.ensure_connection()
    finally:
        holder.close()
    error = raised.value
    assert isinstance(error, OperationalError)
    assert (error.alias, error.vendor, error.pool_size, error.max_overflow) == (
        "default",
        vendor,
        1,
        0,
    )
    assert (error.checked_out, error.waiting) == (1, 0)
    assert error.waited >= 0.23
    assert error.last_connect_error is None and error.__cause__ is None
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Timed out")]
    assert record.levelno == logging.WARNING
    assert {name: getattr(record, name) for name in LOG_FIELDS} == {
        "alias": "default",
        "vendor": vendor,
        "pool_size": 1,
        "checked_out": 1,
        "waiting": 0,
        "waited": error.waited,
    }


def test_a_lost_connection_is_logged_with_the_fields(vendor, caplog):
    wrapper = make_wrapper(pool_size=1, pool_timeout=0.31)
    wrapper.ensure_connection()
    pool = wrapper.dataflow_pool
    lost = OperationalError("server closed the connection unexpectedly")
    pool.connector.is_disconnect = lambda error, connection: True  # this pool's only
    try:
        with caplog.at_level(logging.INFO, logger="django_dataflow.pool"):
            wrapper._dataflow_note_error(lost)
    finally:
        wrapper.close()
    (record,) = [r for r in caplog.records if "was lost" in r.getMessage()]
    assert (record.alias, record.vendor, record.pool_size, record.checked_out) == (
        "default",
        vendor,
        1,
        1,
    )


def test_pool_timeout_without_a_snapshot_reads_none():
    error = PoolTimeout("no pool")
    assert error.alias is None and error.waited is None and error.last_connect_error is None
    with pytest.raises(TypeError):
        PoolTimeout("typo", wiated=1.0)
