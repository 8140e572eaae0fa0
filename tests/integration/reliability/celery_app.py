"""A tiny Celery app for the prefork scenario: the example project's settings, Redis as
broker and result backend, one task that writes the ledger.

    celery -A tests.integration.reliability.celery_app worker --pool prefork --concurrency 2

The parent process touches the database before it forks its children (``worker_init``,
see preload.py), as an application that reads something at start-up does.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.reliability.web_settings")

import django
from celery import Celery
from celery.signals import worker_init

django.setup()

from tests.integration.reliability.counterapp.ledger import record_request  # noqa: E402
from tests.integration.reliability.preload import touch_database  # noqa: E402

BROKER = os.environ.get("RELIABILITY_BROKER", "redis://127.0.0.1:6379/12")

app = Celery("dataflow_reliability", broker=BROKER, backend=BROKER)
app.conf.update(
    task_default_queue=os.environ.get("RELIABILITY_QUEUE", "dataflow-reliability"),
    worker_prefetch_multiplier=1,
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@worker_init.connect
def _touch_database_before_forking(**kwargs: object) -> None:
    touch_database()


@app.task
def count(counter: str, request_id: str) -> dict[str, int]:
    """Write the ledger from a forked child; say which child and server session."""
    session = record_request(counter, request_id, "default")
    time.sleep(0.02)  # long enough for both children to get work
    return {"pid": os.getpid(), "session": session}
