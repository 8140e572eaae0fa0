"""SQLite has no server: every question of ``backends/server.py`` gets its default
answer (no label, no session ids, no lag, no limits). A class of its own so that each
vendor backend names its server queries the same way."""

from __future__ import annotations

from django_dataflow.backends.server import ServerQueries


class SQLiteServer(ServerQueries):
    pass
