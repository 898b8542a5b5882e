"""Django's PostgreSQL backend, with a health check that asks the server only when in doubt,
and the server's limit on a statement's parameters when it binds them.

``CONN_HEALTH_CHECKS`` makes Django check a persistent connection before the first query
of each request, with a ``SELECT 1``: a round trip to the server on every request (0.13
to 0.25 ms on the benchmarks' machine; a prediction took four, now three). An idle
connection in autocommit has nothing to read: the server writes to it only to answer, or
to say it is closing it (shutdown, restart, ``pg_terminate_backend``, an idle timeout),
and a closing peer leaves the socket readable (the message, then EOF). So a connection
that psycopg does not know broken, that is idle, and whose socket has nothing to read is
usable, without asking; any other goes through Django's ``SELECT 1``, as do connections
after an error in the request. What neither check can see (a peer gone without closing,
as in a network partition) is the same for both.

With ``server_side_binding`` (the settings turn it on), parameters travel apart from the SQL,
and the protocol counts them in 16 bits: a statement takes at most 65,535. Django 5.2 knows
no such limit on PostgreSQL, so ``in_bulk`` and the deletion collector would send one
statement with every id of a large set, which the server refuses. Here Django batches them,
as it does for SQLite's and Oracle's limits. One case is left to the callers: the collector
joins with OR the batches of a SET_NULL update, so deleting more than 65,535 calculations in
one call (which empties their ``duplicate_of``) is refused. The only place in siestaflow that
could ask for that, the admin's "delete selected", deletes in chunks
(``CalculationAdmin.delete_queryset``).
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base, features, operations
from django.utils.functional import cached_property
from psycopg.pq import TransactionStatus


def quiet_and_idle(conn) -> bool:
    """True when ``conn`` (psycopg) is open, idle outside a transaction, and its socket has
    nothing to read: nothing has happened to it since its last answer."""
    if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
        return False
    poller = select.poll()
    try:
        poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError):  # the descriptor is gone
        return False


class DatabaseFeatures(features.DatabaseFeatures):
    @cached_property
    def max_query_params(self) -> int | None:
        return 2**16 - 1 if self.uses_server_side_binding else None


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields, objs) -> int:
        limit = self.connection.features.max_query_params
        if limit is None or not fields:
            return len(objs)
        return max(limit // len(fields), 1)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    ops_class = DatabaseOperations

    def is_usable(self) -> bool:
        if self.connection is not None and not self.errors_occurred and quiet_and_idle(self.connection):
            return True
        return super().is_usable()
