"""Settings of the probes' subprocesses: the vendor and database names come from the
environment (see ``helpers.probe_environment``), the credentials from tests.dbsettings.base."""

import os

from tests.dbsettings.base import BASE_DIR, mysql_settings, postgresql_settings, sqlite_settings

SECRET_KEY = "django-dataflow-tests-only"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_dataflow"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

VENDOR = os.environ["PROBE_VENDOR"]
NAME = os.environ["PROBE_DB"]
POOL = {"pool_size": 4, "pool_max_overflow": 2, "pool_timeout": 5.0}
# A long pre-ping bypass window: a parked connection is then taken back without a
# checkout whatever the migrations' duration (a due pre-ping would hide a pinned
# connection).
POOL["pool_pre_ping_bypass"] = 60.0


def entry(**extra):
    if VENDOR == "sqlite":
        path = BASE_DIR / ".cache"
        names = {"NAME": str(path / f"{NAME}.sqlite3")}
        names["TEST"] = {"NAME": str(path / f"test_{NAME}.sqlite3")}
        make = sqlite_settings
    else:
        names = {"NAME": NAME, "TEST": {"NAME": f"test_{NAME}"}}
        make = postgresql_settings if VENDOR == "postgresql" else mysql_settings
    return make(**{**names, "POOL": dict(POOL), **extra})


DATABASES = {
    "default": entry(),
    "replica": entry(TEST={"MIRROR": "default"}),
}
