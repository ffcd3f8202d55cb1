"""Only "the database does not answer" is a 503 (retry); an error the request caused or a bug
is never one (issue 8: a tsvector too long was answered 503, so clients retried forever)."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from psycopg import errors
from psycopg_pool import PoolTimeout
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from gateway.app import _unavailable
from vectorplane import pgerrors


def qdrant(status: int) -> UnexpectedResponse:
    return UnexpectedResponse(
        status_code=status, reason_phrase="x", content=b"{}", headers=httpx.Headers()
    )


DOWN: list[BaseException] = [
    psycopg.OperationalError("connection refused"),  # no SQLSTATE: connection failed or lost
    errors.AdminShutdown(),
    errors.CrashShutdown(),
    errors.CannotConnectNow(),
    errors.TooManyConnections(),
    errors.ConnectionFailure(),
    PoolTimeout("no connection in 30 s"),
    psycopg.InterfaceError("the connection is closed"),
]
NOT_DOWN: list[BaseException] = [
    errors.ProgramLimitExceeded("string is too long for tsvector"),
    errors.DataException("vector out of range"),
    errors.NumericValueOutOfRange(),
    errors.InvalidTextRepresentation(),
    errors.UntranslatableCharacter(),
    errors.QueryCanceled(),
    errors.UniqueViolation(),
    errors.InsufficientPrivilege(),
    errors.SyntaxError(),
    ValueError("a bug"),
]


@pytest.mark.parametrize("exc", DOWN, ids=lambda e: type(e).__name__)
def test_outages_are_503(exc: BaseException) -> None:
    assert pgerrors.unavailable(exc)
    for dedicated, code in ((False, "data_plane_unavailable"), (True, "cluster_unavailable")):
        answer = _unavailable(exc, "docs", dedicated)  # type: ignore[arg-type]
        assert answer is not None and answer.status == 503 and answer.code == code


@pytest.mark.parametrize("exc", NOT_DOWN, ids=lambda e: type(e).__name__)
def test_request_errors_and_bugs_are_never_503(exc: BaseException) -> None:
    assert not pgerrors.unavailable(exc)
    assert _unavailable(exc, "docs", False) is None  # type: ignore[arg-type]
    assert _unavailable(exc, "docs", True) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_qdrant_outages_are_503(status: int) -> None:
    answer = _unavailable(qdrant(status), "docs", True)
    assert answer is not None and answer.code == "cluster_unavailable"
    unreachable = _unavailable(ResponseHandlingException(OSError("refused")), "docs", True)
    assert unreachable is not None and unreachable.status == 503


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500])
def test_qdrant_answers_to_a_bad_request_are_not_503(status: int) -> None:
    assert _unavailable(qdrant(status), "docs", True) is None
