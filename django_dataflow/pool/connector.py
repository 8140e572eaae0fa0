"""What the pool needs to know about one kind of physical connection.

A connector opens, checks, cleans and closes DB-API connections. The pool calls it
outside its lock, so a slow server never blocks other borrowers' bookkeeping.
Vendor connectors live in ``django_dataflow.backends.<vendor>.adapter``.
"""

from __future__ import annotations

from typing import Any, Protocol


class Connector(Protocol):
    def connect(self) -> Any:
        """Open and fully set up one physical connection."""

    def ping(self, connection: Any) -> bool:
        """Return True if the connection answers; the cheapest native liveness check."""

    def has_pending_input(self, connection: Any) -> bool:
        """True if the server sent something to this idle connection (checked without a
        round trip, e.g. by polling its socket): a pre-ping is then due even inside the
        bypass window, because that is how a killed session shows itself."""

    def is_closed(self, connection: Any) -> bool:
        """True if the connection was closed on the client side (checked without a round
        trip before every reuse: someone may have closed it behind the pool's back)."""

    def reset(self, connection: Any) -> bool:
        """Make the connection clean for the next borrower.

        Roll back an open or aborted transaction; return False if the connection is
        broken or busy (mid-query) and must be discarded. In the common case (idle,
        autocommit) this must not cost a round trip.
        """

    def is_clean(self, connection: Any) -> bool:
        """True if the connection is idle with no transaction open, told without a round
        trip; False when it cannot tell. Only clean connections are parked (parked
        connections change hands without a reset)."""

    def close(self, connection: Any) -> None:
        """Close the connection, swallowing errors: it is being thrown away."""

    def forget_after_fork(self, connection: Any) -> None:
        """In a forked child: make sure this inherited connection is never used or
        closed in a way that would disturb the parent (e.g. a QUIT sent on its socket)."""
