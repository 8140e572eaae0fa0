"""What an application that uses the database while it loads leaves in the process.

gunicorn ``--preload`` and Celery load the application in a parent process and fork the
workers from it. With ``RELIABILITY_PRELOAD_FILE`` set, ``touch_database()`` leaves one
connection checked out by the loading thread and one idle in the pool (a cache warm-up
or a feature-flag read at import time does as much), and writes
``"<pid> <held session> <idle session>"`` to that file. The forked workers must use
neither, and must not end them.
"""

from __future__ import annotations

import os
from pathlib import Path


def touch_database() -> None:
    target = os.environ.get("RELIABILITY_PRELOAD_FILE")
    if not target:
        return
    from django.db import connection

    from django_dataflow import pooled_connection

    with connection.cursor() as cursor:  # stays checked out: never closed
        cursor.execute("SELECT pg_backend_pid()")
        held = cursor.fetchone()[0]
    with pooled_connection("default") as pooled:  # a second one, returned: idle
        idle = pooled.execute("SELECT pg_backend_pid()")[0][0]
    Path(target).write_text(f"{os.getpid()} {held} {idle}\n")
