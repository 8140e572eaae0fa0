"""The Django Debug Toolbar set up around a test, with only django-dataflow's panel, and
what the tests read back: the panel's statistics and its rendered content."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.test import modify_settings, override_settings

PANEL = "django_dataflow.debug_toolbar.PoolPanel"
# The toolbar is on unless a request says otherwise (its callback's result is cached
# per process by the toolbar, so the switch is per request, not per setting).
OFF_HEADER = "X-Toolbar"
REQUEST_ID = re.compile(r'data-request-id="([0-9a-f]+)"')


def show_toolbar(request: Any) -> bool:
    return request.headers.get(OFF_HEADER) != "off"


@contextmanager
def toolbar_installed(urlconf: str, middleware: tuple[str, ...] = ()) -> Iterator[None]:
    """The toolbar's app, middleware and URLs, with ``PoolPanel`` as its only panel."""
    with (
        override_settings(
            ROOT_URLCONF=urlconf,
            MIDDLEWARE=["debug_toolbar.middleware.DebugToolbarMiddleware", *middleware],
            DEBUG_TOOLBAR_PANELS=[PANEL],
            DEBUG_TOOLBAR_CONFIG={
                "SHOW_TOOLBAR_CALLBACK": "tests.monitoring.toolbar.show_toolbar",
                "IS_RUNNING_TESTS": False,
            },
            TEMPLATES=[
                {
                    "BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True,
                    "OPTIONS": {
                        "context_processors": ["django.template.context_processors.request"]
                    },
                }
            ],
            STATIC_URL="/static/",
        ),
        modify_settings(INSTALLED_APPS={"append": ["django.contrib.staticfiles", "debug_toolbar"]}),
    ):
        yield


def request_id(response: Any) -> str:
    """The toolbar's id of the request ``response`` answered (in the inserted toolbar)."""
    match = REQUEST_ID.search(response.content.decode())
    assert match, "the toolbar was not inserted into the response"
    return match.group(1)


def panel_stats(response: Any) -> dict[str, Any]:
    """What the panel recorded for the request (as the toolbar stored it)."""
    # Imported here: the store imports the toolbar's models, which need its app installed.
    from debug_toolbar.store import get_store

    stats = get_store().panel(request_id(response), "PoolPanel")
    assert stats, "the panel recorded nothing"
    return stats


def panel_content(client: Any, response: Any) -> str:
    """The panel's HTML, through the toolbar's own render-panel view."""
    answer = client.get(
        "/__debug__/render_panel/",
        {"request_id": request_id(response), "panel_id": "PoolPanel"},
    )
    assert answer.status_code == 200, answer.content
    return answer.json()["content"]
