"""Which PostgreSQL errors mean "the database does not answer (now)" — the only ones any part
of the platform answers with a "retry" 503. Everything else a database says was caused by the
request (refused before it gets there) or is a bug (a 500, logged)."""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg_pool import PoolTimeout

# Connection exceptions (class 08), insufficient resources (class 53: too many connections,
# out of memory or disk), the server shutting down, crashing or still starting (57P01-57P03).
UNAVAILABLE_SQLSTATES: Final = ("08", "53", "57P01", "57P02", "57P03")


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` (from psycopg or psycopg_pool) means the database does not answer."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        # No SQLSTATE: the connection failed or was lost (refused, reset, closed).
        return state is None or state.startswith(UNAVAILABLE_SQLSTATES)
    return isinstance(exc, psycopg.InterfaceError)  # a connection closed under us
