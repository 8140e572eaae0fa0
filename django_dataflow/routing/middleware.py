"""ReadYourWritesMiddleware: after a client writes, its next pages read the primary.

Replicas trail their primary by a little. A client that saves a form and is redirected
would otherwise read the page from a replica that may not have the row yet. After a
request that wrote to a primary, this middleware sets a signed cookie naming that
primary and an expiry ``pin_seconds`` ahead (per set in ``DATAFLOW_ROUTING``, 5 by
default); requests carrying it read that set's primary until then.

It works on the request's own routing scope, the one ``request_started`` begins and
``request_finished`` ends, in sync (WSGI) and async (ASGI) stacks alike: the body of a
streaming response runs after the middleware has returned, and must still see the
request's writes and the cookie's pins. Put it near the top of ``MIDDLEWARE``, so the
writes of the middleware below it (a session saved at login) count too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core import signing
from django.http import HttpRequest, HttpResponseBase

from django_dataflow.routing import context as routing
from django_dataflow.routing.config import get_config
from django_dataflow.routing.context import RoutingScope


class ReadYourWritesMiddleware:
    """Pin a client to the primaries it wrote to, for ``pin_seconds``, with a cookie."""

    sync_capable = True
    async_capable = True

    cookie_name = "dataflow_pin"
    salt = "django_dataflow.middleware.ReadYourWritesMiddleware"

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        # Requests begin and end their scope through the request signals (idempotent:
        # the router connects them too).
        routing.connect_signals()

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        scope = self.request_scope()
        self.pin_from_cookie(request, scope)
        response = self.get_response(request)
        self.remember_writes(request, response, scope)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        scope = self.request_scope()
        self.pin_from_cookie(request, scope)
        response = await self.get_response(request)
        self.remember_writes(request, response, scope)
        return response

    @staticmethod
    def request_scope() -> RoutingScope:
        """The scope ``request_started`` began for this request. It stays current after
        the middleware returns, until ``request_finished``: a scope of the middleware's
        own would end before a streaming body runs. (Without one, a request started
        outside Django's handlers, a scope begins here.)"""
        return routing.current_scope() or routing.start_scope()

    def pin_from_cookie(self, request: HttpRequest, scope: RoutingScope) -> None:
        value = request.COOKIES.get(self.cookie_name)
        if not value:
            return
        try:
            pins = signing.loads(value, salt=self.salt)
        except signing.BadSignature:
            return  # forged or from another SECRET_KEY: ignore
        if isinstance(pins, dict):
            now = time.time()
            scope.pinned_until.update(
                (alias, float(until))
                for alias, until in pins.items()
                if isinstance(until, (int, float)) and until > now
            )

    def remember_writes(
        self, request: HttpRequest, response: HttpResponseBase, scope: RoutingScope
    ) -> None:
        config = get_config()
        if config is None or not scope.written:
            return
        now = time.time()
        pins = {alias: until for alias, until in scope.pinned_until.items() if until > now}
        for primary in scope.written:
            dbset = config.sets.get(primary)
            if dbset is not None and dbset.pin_seconds > 0 and dbset.replicas:
                pins[primary] = max(pins.get(primary, 0.0), now + dbset.pin_seconds)
        if not pins:
            return
        response.set_cookie(
            self.cookie_name,
            signing.dumps(
                {alias: round(until, 3) for alias, until in pins.items()}, salt=self.salt
            ),
            max_age=max(1, int(max(pins.values()) - now + 1)),
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )
