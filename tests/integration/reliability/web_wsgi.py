"""The example project's WSGI application (``demo.wsgi``) for gunicorn, touching the
database while it loads when RELIABILITY_PRELOAD_FILE is set (see preload.py)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.reliability.web_settings")

from demo.wsgi import application

from tests.integration.reliability.preload import touch_database

touch_database()

__all__ = ["application"]
