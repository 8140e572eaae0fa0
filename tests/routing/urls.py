"""Views of the middleware tests: each reports which server its read came from."""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path

from tests.routing.helpers import where_read
from tests.routing.routingapp.models import Article


def _report(title):
    alias, in_recovery = where_read(Article)
    found = Article.objects.filter(title=title).exists()
    return {"alias": alias, "in_recovery": in_recovery, "found": found}


def write(request, title):
    Article.objects.create(title=title)
    return JsonResponse(_report(title))


def read(request, title):
    return JsonResponse(_report(title))


async def async_write(request, title):
    await Article.objects.acreate(title=title)
    return JsonResponse(await sync_to_async(_report)(title))


async def async_read(request, title):
    return JsonResponse(await sync_to_async(_report)(title))


def write_then_stream(request, title):
    # The body runs after every middleware has returned (a CSV export of what was just
    # saved, say), but still inside the request.
    Article.objects.create(title=title)

    def body():
        yield json.dumps(_report(title)).encode()

    return StreamingHttpResponse(body())


def stream(request, title):
    def body():
        yield json.dumps(_report(title)).encode()

    return StreamingHttpResponse(body())


async def async_write_then_stream(request, title):
    await Article.objects.acreate(title=title)

    async def body():
        yield json.dumps(await sync_to_async(_report)(title)).encode()

    return StreamingHttpResponse(body())


urlpatterns = [
    path("stream/write/<str:title>", write_then_stream),
    path("stream/read/<str:title>", stream),
    path("async/stream/write/<str:title>", async_write_then_stream),
    path("write/<str:title>", write),
    path("read/<str:title>", read),
    path("async/write/<str:title>", async_write),
    path("async/read/<str:title>", async_read),
]
