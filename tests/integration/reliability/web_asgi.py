"""The example project's ASGI application (``demo.asgi``) for uvicorn."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.reliability.web_settings")

from demo.asgi import application

__all__ = ["application"]
