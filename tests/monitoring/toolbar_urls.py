"""Views of the Debug Toolbar panel's tests: each queries the database of the run and
answers an HTML page (the toolbar goes in before its ``</body>``)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connections
from django.http import HttpResponse
from django.urls import include, path

from django_dataflow.backends import tracing
from tests.testapp.models import Item


def page(text: str) -> HttpResponse:
    return HttpResponse(f"<html><body><p>{text}</p></body></html>")


def one_checkout(request):
    count = Item.objects.count()
    return page(f"items: {count}; tracing: {tracing.active}")


def two_checkouts(request):
    # The connection goes back to the pool between the two queries: two checkouts.
    Item.objects.count()
    connections["default"].close()
    count = Item.objects.count()
    return page(f"items: {count}; tracing: {tracing.active}")


async def async_one_checkout(request):
    count = await sync_to_async(Item.objects.count)()
    return page(f"items: {count}; tracing: {tracing.active}")


urlpatterns = [
    path("one/", one_checkout),
    path("two/", two_checkouts),
    path("async/one/", async_one_checkout),
    path("__debug__/", include("debug_toolbar.urls")),
]
