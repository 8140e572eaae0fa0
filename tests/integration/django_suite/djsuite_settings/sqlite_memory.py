"""Django's test suite on SQLite with in-memory test databases, exactly as Django runs it.

Our engine does not pool in-memory databases, so this run checks that it keeps Django's
semantics there; sqlite_file.py is the run that exercises the pool.
"""

from __future__ import annotations

from djsuite_settings.common import *  # noqa: F403
from djsuite_settings.common import database

DATABASES = {"default": database("sqlite3"), "other": database("sqlite3")}
