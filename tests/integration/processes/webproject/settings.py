"""A minimal project for the process-lifecycle tests: one pooled alias chosen by the
environment (PROCS_VENDOR, PROCS_DB), statistics published often to PROCS_STATS_DIR."""

import os

SECRET_KEY = "processes-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_dataflow"]
ROOT_URLCONF = "tests.integration.processes.webproject.urls"
MIDDLEWARE = []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATAFLOW_STATS_INTERVAL = float(os.environ.get("PROCS_STATS_INTERVAL", "0.5"))

VENDOR = os.environ.get("PROCS_VENDOR", "postgresql")
NAME = os.environ.get("PROCS_DB", "postgres")
POOL = {
    "pool_size": int(os.environ.get("PROCS_POOL_SIZE", "2")),
    "pool_max_overflow": int(os.environ.get("PROCS_POOL_OVERFLOW", "2")),
    "pool_timeout": 10.0,
}
# The server: what the test passes (tests/dbsettings/base.py's, from the environment).
SERVER = {
    key: os.environ.get(f"PROCS_SERVER_{key}", "") for key in ("HOST", "PORT", "USER", "PASSWORD")
}
if VENDOR == "postgresql":
    default = {
        "ENGINE": os.environ.get("PROCS_ENGINE", "django_dataflow.backends.postgresql"),
        "NAME": NAME,
        **SERVER,
        # DEBUG1 on our own sessions only: PostgreSQL then logs a session that ended
        # without a Terminate message ("unexpected EOF on client connection").
        "OPTIONS": {"options": "-c log_min_messages=debug1"},
    }
elif VENDOR == "mysql":
    default = {
        "ENGINE": os.environ.get("PROCS_ENGINE", "django_dataflow.backends.mysql"),
        "NAME": NAME,
        **SERVER,
    }
else:
    default = {
        "ENGINE": os.environ.get("PROCS_ENGINE", "django_dataflow.backends.sqlite3"),
        "NAME": NAME,
    }
if default["ENGINE"].startswith("django_dataflow"):
    default["POOL"] = POOL
DATABASES = {"default": default}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_dataflow": {"handlers": ["console"], "level": "WARNING"}},
}
