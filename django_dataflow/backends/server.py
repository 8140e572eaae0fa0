"""What the rest of the package may ask a database server, whatever its vendor.

Routing measures a replica's lag, the system checks read the server's connection limit
and idle timeout, monitoring lists the server's sessions and notes each pooled
connection's session id, and pools label their connections for the server's own views.
Each of these is a query, or a driver call, that differs per vendor; they all live in
``backends/<vendor>/server.py``, reached through the wrapper (its class attribute
``dataflow_server``), so that no module outside ``backends/`` tests the vendor.

``ServerQueries`` is the behaviour of a vendor without a server to ask (SQLite): nothing
to label, no session ids, no lag, no limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.utils import load_backend

from django_dataflow.settings.engines import BY_VENDOR


@dataclass
class ServerSession:
    """One client session as the server lists it, in terms every vendor can fill."""

    id: Any  # the server's session id (PostgreSQL backend pid, MySQL connection id)
    client: str  # client address, or "local"
    state: str  # "active", "idle", "idle in transaction", ...
    seconds: float | None  # time spent in that state (None: unknown)
    # What to call the session when nothing identifies it as a pooled one.
    label: str
    # The name the session gave itself (PostgreSQL's application_name; None elsewhere).
    application: str | None = None
    # The client's process id and program name, if the client reported them (MySQL's
    # connection attributes, where performance_schema is on).
    client_pid: int | None = None
    program: str | None = None


@dataclass
class SessionListing:
    """The sessions of one database, and the server's connection counts."""

    sessions: list[ServerSession]
    max_connections: int
    reserved: int  # connections kept for superusers
    in_use: int  # every client session on the server, all databases
    notes: list[str] = field(default_factory=list)  # what the listing could not tell


class ServerQueries:
    """The default answers: the vendor has no server to ask."""

    # Can the server list its sessions and tell its connection limit?
    has_server = False
    # Does the server close sessions that stay idle too long (see idle_session_timeout)?
    closes_idle_sessions = False

    def identify_connection(self, alias: str, conn_params: dict[str, Any]) -> dict[str, Any]:
        """``conn_params`` for a pool's physical connections, labelled with this process
        where the server has a place for it (the parameters themselves otherwise)."""
        return conn_params

    def session_id(self, dbapi_connection: Any) -> Any:
        """The server's id of the connection's session, without a round trip (None:
        the vendor has none)."""
        return None

    def replication_lag(self, dbapi_connection: Any) -> float | None:
        """Seconds the server behind ``dbapi_connection`` trails its primary: 0 for a
        server that is not a replica, None when unknown (replication stopped)."""
        return 0.0

    def connection_limit(self, cursor: Any) -> tuple[int, str] | None:
        """(connections the server accepts from ordinary roles, how that was computed)."""
        return None

    def idle_session_timeout(self, cursor: Any) -> int | None:
        """Seconds after which the server closes an idle session (None: never)."""
        return None

    def sessions(self, cursor: Any, database: str) -> SessionListing:
        """The client sessions on ``database`` other than the cursor's own."""
        raise NotImplementedError(f"{type(self).__name__} has no server sessions to list.")


def vendor_queries(vendor: str) -> ServerQueries:
    """The queries for ``vendor``'s servers: those of its pooled backend, which also
    serve a wrapper of Django's stock backend for the vendor."""
    engine = BY_VENDOR.get(vendor)
    if engine is None:
        return ServerQueries()
    return load_backend(engine.path).DatabaseWrapper.dataflow_server


def wrapper_queries(wrapper: Any) -> ServerQueries:
    """The queries for ``wrapper``'s server (a DatabaseWrapper, ours or Django's, or its
    class)."""
    queries = getattr(wrapper, "dataflow_server", None)
    return queries if queries is not None else vendor_queries(wrapper.vendor)
