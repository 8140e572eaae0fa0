"""What the pool needs to know about psycopg 3 connections.

psycopg tracks the server's transaction status on the client, so reset costs no round
trip unless a transaction is really open; the ping is an empty query, the cheapest
round trip the protocol has. With ``pool_reset_on_return`` every return also sends
``DISCARD ALL`` and puts Django's time zone and role back.
"""

from __future__ import annotations

from typing import Any

from psycopg import pq, sql

from django_dataflow.backends.connector import SETUP_DUE, DjangoConnector
from django_dataflow.settings.options import ConfigurationError

IDLE = pq.TransactionStatus.IDLE
IN_TRANSACTION = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)
COMMAND_OK = pq.ExecStatus.COMMAND_OK


class PostgreSQLConnector(DjangoConnector):
    has_application_name = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.reset_on_return and self.options.get("behind_transaction_pooler"):
            # The server session belongs to the pooler, which resets it itself
            # (PgBouncer's server_reset_query); a DISCARD ALL sent through it resets
            # whichever session it happens to run on.
            raise ConfigurationError(
                "POOL['pool_reset_on_return']=True cannot work with "
                "behind_transaction_pooler=True: the pooler owns the server sessions. "
                "Set server_reset_query = DISCARD ALL (and server_reset_query_always = 1) "
                "in PgBouncer instead."
            )

    def connect(self) -> Any:
        connection = super().connect()
        # psycopg's prepared-statement cache is a connection attribute, not a parameter.
        statement_cache_size = self.options.get("statement_cache_size")
        if statement_cache_size:
            connection.prepared_max = statement_cache_size
        # What reset restores if a borrower changed them: psycopg's transaction
        # characteristics, client-side attributes sent with each BEGIN.
        self.isolation_level = connection.isolation_level
        self.read_only = connection.read_only
        self.deferrable = connection.deferrable
        return connection

    @staticmethod
    def driver_autocommit(connection: Any) -> bool:
        return connection.autocommit

    def is_closed(self, connection: Any) -> bool:
        return connection.closed or connection.broken

    def ping(self, connection: Any) -> bool:
        if connection.closed or connection.broken:
            return False
        # Straight to libpq: an empty query never opens a transaction.
        result = connection.pgconn.exec_(b"")
        return result.status == pq.ExecStatus.EMPTY_QUERY

    def reset(self, connection: Any) -> bool:
        if connection.broken:
            return False
        # pgconn is libpq's view, kept current by every reply: no round trip.
        status = connection.pgconn.transaction_status
        if status in IN_TRANSACTION:
            connection.rollback()
        elif status != IDLE:
            return False  # ACTIVE (returned mid-query) or UNKNOWN (broken)
        if self.reset_on_return and not self._discard_all(connection):
            return False
        if connection.isolation_level != self.isolation_level:
            connection.isolation_level = self.isolation_level
        if connection.read_only != self.read_only:
            connection.read_only = self.read_only
        if connection.deferrable != self.deferrable:
            connection.deferrable = self.deferrable
        return True

    def _discard_all(self, connection: Any) -> bool:
        """Reset the session as new (no transaction is open: DISCARD ALL refuses to
        run in one), then put back what Django set on it; True if that worked."""
        pgconn = connection.pgconn
        # Straight to libpq, as the ping: through a cursor psycopg would count the
        # statement, and prepare it after five returns.
        if pgconn.exec_(b"DISCARD ALL").status != COMMAND_OK:
            return False
        # DISCARD ALL deallocated the session's prepared statements. psycopg notices
        # only the first time a cursor sends it, and has no public call for this: left
        # as it is, its next use of a statement it believes prepared would fail. (It
        # sends one DEALLOCATE ALL with the next query, only if it had any.)
        connection._prepared.clear()
        # What Django's setup set on the session (the steps it gives psycopg_pool as
        # ``configure``): the time zone, and the role of OPTIONS["assume_role"]. At
        # once, in one round trip: left to the next checkout, a privilege dropped with
        # assume_role would be back meanwhile.
        template = self.template
        statements = []
        timezone_name = template.timezone_name
        if timezone_name and connection.info.parameter_status("TimeZone") != timezone_name:
            statements.append(sql.SQL("SET TIME ZONE {}").format(sql.Literal(timezone_name)))
        role = template.settings_dict["OPTIONS"].get("assume_role")
        if role:
            statements.append(sql.SQL("SET ROLE {}").format(sql.Literal(role)))
        if statements:
            query = sql.SQL("; ").join(statements).as_bytes(connection)
            if pgconn.exec_(query).status != COMMAND_OK:
                return False
        # The rest of Django's setup, and the pool_connect hooks, at the next checkout.
        setattr(connection, SETUP_DUE, True)
        return True

    def is_clean(self, connection: Any) -> bool:
        # Never parked with pool_reset_on_return: the next request of the thread is
        # another borrower, and gets a session reset on the way.
        if self.reset_on_return:
            return False
        # A closed or broken connection's status is not IDLE either. Autocommit on too,
        # as on MySQL: a raw ``connection.autocommit = False`` (no transaction open yet)
        # would otherwise be parked, and the thread's next request, which Django
        # believes autocommitted, would write into a transaction its return rolls back.
        return (
            connection.autocommit
            and connection.pgconn.transaction_status == IDLE
            and connection.isolation_level == self.isolation_level
            and connection.read_only == self.read_only
            and connection.deferrable == self.deferrable
        )

    def is_disconnect(self, error: BaseException, connection: Any) -> bool:
        return bool(connection is not None and (connection.closed or connection.broken))
