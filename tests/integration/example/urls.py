"""URLs for the ``pool_loadtest --url`` tests: a list view, and one that always fails."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from tests.testapp.models import Item


def active_items(request: HttpRequest) -> HttpResponse:
    names = list(Item.objects.filter(active=True).values_list("name", flat=True)[:100])
    return JsonResponse({"items": names})


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("this view always fails")


urlpatterns = [
    path("items/", active_items),
    path("broken/", broken),
]
