"""Routing state of the current request or task, and the context managers that steer it.

The state lives in ``contextvars``, not thread-locals: each thread, each asyncio task and
each ASGI request sees its own, and ``sync_to_async`` carries it into the thread that
runs the ORM. Two variables:

* the *override* — set by ``use_primary()``, ``use_replica()``, ``use_analytics()`` and
  ``use_database(alias)``; immutable, restored on exit, so the managers nest;
* the *scope* — one mutable ``RoutingScope`` per request or task: which primaries were
  written (reads follow them there), pins carried in by the middleware's cookie, and the
  replica chosen for each set (one replica per request gives monotonic reads).

A scope starts with each request (``request_started``; ``ReadYourWritesMiddleware``
works on that one, and starts one only for a request that came without the signal)
and each Celery task (``task_prerun``), so none of them inherits the pins of the one
before in the same thread; a task run eagerly inside a request or another task hands
its caller's scope back when it ends (``task_postrun``). Outside any of these a write
starts a scope for the rest of the current context: the rest of the task, or of the
thread.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, NamedTuple, TypeVar

from asgiref.sync import iscoroutinefunction
from django.core.signals import request_finished, request_started
from django.db import connections

F = TypeVar("F", bound=Callable[..., Any])

PRIMARY, REPLICA, ANALYTICS, DATABASE = "primary", "replica", "analytics", "database"


class Override(NamedTuple):
    target: str  # PRIMARY, REPLICA, ANALYTICS or DATABASE
    alias: str | None = None  # for DATABASE


class RoutingScope:
    """What the router remembers for one request or task."""

    __slots__ = ("outer", "pinned_until", "replicas", "written")

    def __init__(self, outer: RoutingScope | None = None) -> None:
        self.written: set[str] = set()  # primaries written in this scope
        self.pinned_until: dict[str, float] = {}  # primary -> time.time() (from a cookie)
        self.replicas: dict[str, str] = {}  # primary -> the replica chosen for its reads
        # The scope a Celery task ran inside (an eager task's caller), back at its end.
        self.outer = outer

    def pins(self, primary: str) -> bool:
        """Must reads of ``primary``'s set go to the primary?"""
        if primary in self.written:
            return True
        until = self.pinned_until.get(primary)
        return until is not None and until > time.time()


_override: ContextVar[Override | None] = ContextVar("dataflow_route_override", default=None)
_scope: ContextVar[RoutingScope | None] = ContextVar("dataflow_routing_scope", default=None)


def current_override() -> Override | None:
    """The innermost ``use_*()`` in force, or None."""
    return _override.get()


def current_scope() -> RoutingScope | None:
    """The scope of the current request or task, or None outside any."""
    return _scope.get()


def note_write(primary: str) -> None:
    """Record a write to ``primary``: later reads of its set go there, in this scope."""
    scope = _scope.get()
    if scope is None:
        scope = RoutingScope()
        _scope.set(scope)
    scope.written.add(primary)


def start_scope() -> RoutingScope:
    """Begin a fresh scope in the current context (for signal receivers: no token)."""
    scope = RoutingScope()
    _scope.set(scope)
    return scope


def end_scope() -> None:
    _scope.set(None)


# -- context managers that are decorators too ---------------------------------------------


class _ContextSwitch:
    """A nestable context manager that sets a ContextVar, usable as a decorator of sync
    and async functions. As a decorator each call enters a fresh copy, so one decorated
    function can run in many threads and tasks at once."""

    def _value(self) -> Any:
        raise NotImplementedError

    def _spelling(self) -> str:
        """How the user wrote it, for messages."""
        return f"{type(self).__name__}()"

    _var: ContextVar[Any]

    def __init__(self) -> None:
        self._tokens: list[Token] = []

    def _copy(self) -> _ContextSwitch:
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        clone._tokens = []
        return clone

    def __enter__(self) -> Any:
        value = self._value()
        self._tokens.append(self._var.set(value))
        return value

    def __exit__(self, *exc_info: Any) -> None:
        self._var.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            # Calling one only creates the generator: its body would run later, outside
            # the decorator, silently unsteered.
            raise TypeError(
                f"{self._spelling()} cannot decorate the generator function "
                f"{getattr(func, '__qualname__', func)!r}: its body runs after the call "
                f"returns. Use `with {self._spelling()}:` inside the generator instead."
            )
        if iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self._copy():
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._copy():
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]


class _Steer(_ContextSwitch):
    _var = _override

    def __init__(self, target: str, alias: str | None = None) -> None:
        super().__init__()
        self.override = Override(target, alias)

    def _value(self) -> Override:
        return self.override

    def _spelling(self) -> str:
        target, alias = self.override
        return f"use_{target}({alias!r})" if alias else f"use_{target}()"

    def __repr__(self) -> str:
        return f"<{self._spelling()}>"


class routing_scope(_ContextSwitch):
    """A fresh scope: no pins, no chosen replica; the previous one comes back on exit.

    Requests and Celery tasks get one automatically. Use it for other units of work
    that run one after another in a thread (a queue worker's jobs, a long command's
    batches), so that a write in one does not keep the next on the primary.
    """

    _var = _scope

    def _value(self) -> RoutingScope:
        return RoutingScope()


def _steer(target: str, func: Callable | None) -> Any:
    steer = _Steer(target)
    return steer if func is None else steer(func)


def use_primary(func: F | None = None) -> Any:
    """Send reads to the primary (writes always go there): ``with use_primary():``,
    ``@use_primary`` or ``@use_primary()``. Use it where a stale read would do harm."""
    return _steer(PRIMARY, func)


def use_replica(func: F | None = None) -> Any:
    """Send reads to a replica even after a write or inside ``atomic()``: for reads
    that may be a little stale. Falls back to the primary when no replica is usable."""
    return _steer(REPLICA, func)


def use_analytics(func: F | None = None) -> Any:
    """Send reads to the set's analytics database (long reports). Writes still go to
    the primary; sets without an analytics alias read as usual."""
    return _steer(ANALYTICS, func)


def use_database(alias: str) -> Any:
    """Send every routed query, read or write, to ``alias``."""
    if alias not in connections.settings:
        from django.utils.connection import ConnectionDoesNotExist

        raise ConnectionDoesNotExist(f"The connection {alias!r} doesn't exist.")
    return _Steer(DATABASE, alias)


# -- scope boundaries: requests and Celery tasks ------------------------------------------


def _request_started(**kwargs: Any) -> None:
    start_scope()


def _request_finished(**kwargs: Any) -> None:
    end_scope()


def _task_prerun(**kwargs: Any) -> None:
    # A task may run inside another unit of work: an eager one (``apply()``,
    # ``task_always_eager``) runs in its caller's thread, in the middle of a request or
    # another task. It gets a fresh scope, and its caller gets its own back at the end
    # (with the pins of its writes), not no scope at all.
    _scope.set(RoutingScope(outer=_scope.get()))


def _task_postrun(**kwargs: Any) -> None:
    scope = _scope.get()
    if scope is None:
        return
    outer = scope.outer
    if outer is not None:
        # An eager task's writes happened inside its caller: the caller's reads after
        # it must see them too (and its cookie pin them).
        outer.written |= scope.written
    _scope.set(outer)


def connect_signals() -> None:
    """Start a scope with every request and every Celery task (if Celery is installed).

    Called through ``router.connect_receivers()`` (from ``AppConfig.ready()`` and when
    Django builds the router); idempotent.
    """
    request_started.connect(_request_started, dispatch_uid="django_dataflow.routing.started")
    request_finished.connect(_request_finished, dispatch_uid="django_dataflow.routing.finished")
    if importlib.util.find_spec("celery") is None:
        return
    from celery import signals as celery_signals

    celery_signals.task_prerun.connect(
        _task_prerun, weak=False, dispatch_uid="django_dataflow.routing.task_prerun"
    )
    celery_signals.task_postrun.connect(
        _task_postrun, weak=False, dispatch_uid="django_dataflow.routing.task_postrun"
    )
