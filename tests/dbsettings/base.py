"""Settings shared by every test run; one module per database vendor builds on it.

Credentials come from the environment, with the local defaults of the development
machine (PostgreSQL and MariaDB on 127.0.0.1, trust / empty-password auth).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = "django-dataflow-tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_dataflow",
    "tests.testapp",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Small pools with short timeouts keep the tests quick and make limits easy to hit.
TEST_POOL = {
    "pool_size": 4,
    "pool_max_overflow": 2,
    "pool_timeout": 5.0,
    "pool_pre_ping": True,
}


def postgresql_settings(**overrides):
    return {
        "ENGINE": "django_dataflow.backends.postgresql",
        "NAME": os.environ.get("POSTGRES_DB", "test"),
        "USER": os.environ.get("POSTGRES_USER", "postgres"),
        "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
        "HOST": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
        "PORT": os.environ.get("POSTGRES_PORT", "5432"),
        "POOL": dict(TEST_POOL),
        # One test database per process, so that concurrent runs never share it.
        "TEST": {"NAME": f"test_dataflow_{os.getpid()}"},
        **overrides,
    }


def mysql_settings(**overrides):
    return {
        "ENGINE": "django_dataflow.backends.mysql",
        "NAME": os.environ.get("MYSQL_DB", "test"),
        "USER": os.environ.get("MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
        "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("MYSQL_PORT", "3306"),
        "POOL": dict(TEST_POOL),
        "TEST": {"NAME": f"test_dataflow_{os.getpid()}"},
        **overrides,
    }


def sqlite_settings(**overrides):
    return {
        "ENGINE": "django_dataflow.backends.sqlite3",
        "NAME": str(BASE_DIR / ".cache" / "tests.sqlite3"),
        "POOL": dict(TEST_POOL),
        # A file test database: an in-memory one is never pooled (see docs/backends.md).
        # One per process, so that concurrent runs never share it.
        "TEST": {"NAME": str(BASE_DIR / ".cache" / f"test_tests_{os.getpid()}.sqlite3")},
        **overrides,
    }
