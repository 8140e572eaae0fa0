"""What the checkouts of one request did, for the Django Debug Toolbar's panel.

Why it exists: the panel shows, for the request it renders, each checkout (alias, new /
reused / parked, time spent getting the connection, time held). Only the backends know
when a wrapper takes a connection and gives it back, so they report here; the panel
(``django_dataflow/debug_toolbar.py``) opens a trace around the request and reads it.

What it costs when nobody traces: one read of the module global ``active`` per checkout
and per return. ``active`` counts the traces open in the process (any thread); while it
is zero nothing else runs. A trace belongs to a context (``ContextVar``), so the
checkouts of other requests served meanwhile are not mixed into it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# How many traces are open in the process; the backends skip everything while it is 0.
active = 0

NEW = "new"  # a physical connection opened for this checkout
REUSED = "reused"  # an idle connection of the pool (or parked by another thread)
PARKED = "parked"  # the connection this thread parked, taken back


@dataclass
class Checkout:
    """One checkout of a request: which pool, how, how long to get and how long held."""

    alias: str
    vendor: str
    how: str
    acquire_seconds: float
    connection_id: int  # id() of the pool's record: the same number, the same connection
    started: float = field(default_factory=time.perf_counter)
    held_seconds: float | None = None  # None while still held
    returned_as: str | None = None  # "returned" or "parked"


@dataclass
class Trace:
    """The checkouts (and router decisions, filled by the router) of one request."""

    checkouts: list[Checkout] = field(default_factory=list)
    routing: list[dict[str, Any]] = field(default_factory=list)
    # id(wrapper) -> its checkout still held
    open: dict[int, Checkout] = field(default_factory=dict)


current_trace: ContextVar[Trace | None] = ContextVar("dataflow_trace", default=None)


@contextmanager
def collect() -> Iterator[Trace]:
    """Record the checkouts made in this context inside the block."""
    global active
    trace = Trace()
    token = current_trace.set(trace)
    active += 1
    try:
        yield trace
    finally:
        active -= 1
        current_trace.reset(token)


def checked_out(wrapper: Any, record: Any, how: str, acquire_seconds: float) -> None:
    """``wrapper`` holds ``record``'s connection now (call only while ``active``)."""
    trace = current_trace.get()
    if trace is None:
        return
    checkout = Checkout(
        alias=wrapper.alias,
        vendor=wrapper.vendor,
        how=how,
        acquire_seconds=acquire_seconds,
        connection_id=id(record),
    )
    trace.checkouts.append(checkout)
    trace.open[id(wrapper)] = checkout


def checked_in(wrapper: Any, returned_as: str) -> None:
    """``wrapper`` gave its connection back or parked it (call only while ``active``)."""
    trace = current_trace.get()
    if trace is None:
        return
    checkout = trace.open.pop(id(wrapper), None)
    if checkout is not None:
        checkout.held_seconds = time.perf_counter() - checkout.started
        checkout.returned_as = returned_as


def routed(decision: dict[str, Any]) -> None:
    """A router decision for this request (call only while ``active``)."""
    trace = current_trace.get()
    if trace is not None:
        trace.routing.append(decision)
