"""Views of the Debug Toolbar panel's routing test: reads the router sends to a replica,
then to the primary (after a write, inside use_primary())."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import include, path

from django_dataflow.routing import use_primary
from tests.routing.routingapp.models import Article


def read_write_read(request):
    Article.objects.filter(title="toolbar").exists()  # a replica, chosen by weight
    Article.objects.filter(title="toolbar").exists()  # the same replica, kept
    with use_primary():
        Article.objects.filter(title="toolbar").exists()
    Article.objects.create(title="toolbar")
    Article.objects.filter(title="toolbar").exists()  # read-your-writes: the primary
    return HttpResponse("<html><body><p>done</p></body></html>")


urlpatterns = [
    path("read-write-read/", read_write_read),
    path("__debug__/", include("debug_toolbar.urls")),
]
