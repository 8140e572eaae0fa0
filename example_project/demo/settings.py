"""Settings of the example site, read from the environment with django-environ.

With no variable set, the site runs on an SQLite file beside manage.py, with one pool.
``DATABASE_URL`` moves it to PostgreSQL or MySQL/MariaDB; ``REPLICA_URL`` and
``ANALYTICS_URL`` add a read replica and an analytics database, and django-dataflow's
router then sends reads, writes and analytics to their own pools (see databases.py).
"""

from __future__ import annotations

from pathlib import Path

import environ

from demo.databases import databases, routing

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="django-dataflow-example-not-a-secret")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_dataflow",
    "accounts",
]
MIDDLEWARE = [
    # After a request that wrote, the client's next pages read the primary for a few
    # seconds (replicas trail it); without a replica it only starts a routing scope.
    "django_dataflow.middleware.ReadYourWritesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "demo.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "demo.wsgi.application"

DATABASES = databases(env)
DATAFLOW_ROUTING = routing(DATABASES)
DATABASE_ROUTERS = ["django_dataflow.routers.DataFlowRouter"] if DATAFLOW_ROUTING else []

AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        # Pool events worth a look: timeouts, leaks, lost connections.
        "django_dataflow.pool": {"handlers": ["console"], "level": "WARNING"},
        # The checkout-time hook's warnings (accounts/pool_hooks.py).
        "accounts.pool": {"handlers": ["console"], "level": "WARNING"},
    },
}
