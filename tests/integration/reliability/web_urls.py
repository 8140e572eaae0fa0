"""The example project's URLs, plus the ledger's (see web_settings.py)."""

from __future__ import annotations

from django.urls import include, path

from tests.integration.reliability.counterapp import views

urlpatterns = [
    path("reliability/hit/", views.hit),
    path("reliability/whoami/", views.whoami),
    path("", include("demo.urls")),
]
