"""What the pool needs to know about psycopg 3 connections.

psycopg tracks the server's transaction status on the client, so reset costs no round
trip unless a transaction is really open; the ping is an empty query, the cheapest
round trip the protocol has.
"""

from __future__ import annotations

from typing import Any

from psycopg import pq

from django_dataflow.backends.connector import DjangoConnector

IDLE = pq.TransactionStatus.IDLE
IN_TRANSACTION = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


class PostgreSQLConnector(DjangoConnector):
    has_application_name = True

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
        if connection.isolation_level != self.isolation_level:
            connection.isolation_level = self.isolation_level
        if connection.read_only != self.read_only:
            connection.read_only = self.read_only
        if connection.deferrable != self.deferrable:
            connection.deferrable = self.deferrable
        return True

    def is_clean(self, connection: Any) -> bool:
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
