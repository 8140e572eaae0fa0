import os
import threading
import time

from django.db import connection, transaction
from django.http import JsonResponse
from django.urls import path


def _session():
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]
        if vendor == "mysql":
            cursor.execute("SELECT CONNECTION_ID()")
            return cursor.fetchone()[0]
        cursor.execute("SELECT 1")
        return None


def query(request):
    return JsonResponse(
        {"pid": os.getpid(), "session": _session(), "thread": threading.get_ident()}
    )


def slow(request):
    session = _session()
    time.sleep(float(request.GET.get("s", "1")))
    return JsonResponse({"pid": os.getpid(), "session": session})


def slow_tx(request):
    with transaction.atomic():
        session = _session()
        time.sleep(float(request.GET.get("s", "1")))
    return JsonResponse({"pid": os.getpid(), "session": session})


def whoami(request):
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("q/", query),
    path("slow/", slow),
    path("slow_tx/", slow_tx),
    path("whoami/", whoami),
]
