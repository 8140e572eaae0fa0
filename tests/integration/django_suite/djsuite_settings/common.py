"""What every vendor's settings share: the ENGINE switch, pool options and the recording runner.

The values mirror Django's own ``tests/test_sqlite.py``; run.py sets the environment variables.
"""

from __future__ import annotations

import json
import os
import sys

ENGINE_KIND = os.environ.get("DJSUITE_ENGINE", "stock")
if ENGINE_KIND not in {"stock", "dataflow"}:
    raise RuntimeError(f"DJSUITE_ENGINE must be 'stock' or 'dataflow', not {ENGINE_KIND!r}")

# Where our engines live; another package can stand in to try the harness itself.
DATAFLOW_ENGINES = os.environ.get("DJSUITE_ENGINE_PACKAGE", "django_dataflow.backends")

# Distinct database names so that other test runs on the same servers are never touched
# (run.py adds its pid); Django creates test_<NAME> and clones test_<NAME>_1, _2, ...
DB_PREFIX = os.environ.get("DJSUITE_DB_PREFIX", "djsuite_")

DEFAULT_POOL = {"pool_size": 5, "pool_max_overflow": 5, "pool_timeout": 10}

STOCK_ENGINES = {
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
    "sqlite3": "django.db.backends.sqlite3",
}

SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
TEST_RUNNER = "djsuite_settings.runner.RecordingRunner"


def pool_options() -> dict:
    """The POOL dict for our engines; DJSUITE_POOL (JSON) overrides the default."""
    raw = os.environ.get("DJSUITE_POOL")
    options = json.loads(raw) if raw else dict(DEFAULT_POOL)
    # run.py --pool-scope: how long a connection is held (docs/backends.md).
    options.setdefault("pool_scope", os.environ.get("DJSUITE_POOL_SCOPE", "request"))
    return options


def database(vendor: str, **entry) -> dict:
    """One DATABASES entry for ``vendor`` (a module name under django.db.backends)."""
    if ENGINE_KIND == "dataflow":
        entry = {"ENGINE": f"{DATAFLOW_ENGINES}.{vendor}", "POOL": pool_options(), **entry}
    else:
        entry = {"ENGINE": STOCK_ENGINES[vendor], **entry}
    entry.setdefault("CONN_MAX_AGE", 0)
    return entry


def db_name(alias: str) -> str:
    """A server-side database name unique to this harness, engine and alias."""
    return f"{DB_PREFIX}{ENGINE_KIND}_{alias}"


def install_dataflow_app() -> None:
    """Add django_dataflow to the apps runtests.py installs, as a user's project would.

    runtests.py replaces INSTALLED_APPS with its module-level ALWAYS_INSTALLED_APPS list
    after importing these settings, so appending to that list is the one way in.
    """
    if ENGINE_KIND != "dataflow" or os.environ.get("DJSUITE_INSTALL_APP", "1") != "1":
        return
    always = getattr(sys.modules.get("__main__"), "ALWAYS_INSTALLED_APPS", None)
    if always is not None and "django_dataflow" not in always:
        always.append("django_dataflow")


install_dataflow_app()
