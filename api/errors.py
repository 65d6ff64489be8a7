"""The one table mapping tally's errors to HTTP statuses and ErrorResponse codes, and the handlers using it."""

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from api.metrics import EVENTS_REFUSED
from api.schemas import ErrorResponse
from domain.errors import (
    AccountBusy,
    AccountQuarantined,
    AlreadyExists,
    BodyTooLarge,
    Forbidden,
    InvalidOperation,
    NotFound,
    RequestTimedOut,
    StoreUnavailable,
    TallyError,
    Unauthenticated,
    ValidationFailed,
    VersionConflict,
)

log = logging.getLogger("tally.api")
_encoder = msgspec.json.Encoder()

STATUS_OF: dict[type[TallyError], tuple[int, str]] = {
    NotFound: (404, "not_found"),
    ValidationFailed: (400, "validation_error"),
    InvalidOperation: (400, "invalid_operation"),
    AlreadyExists: (409, "already_exists"),
    VersionConflict: (409, "version_conflict"),
    AccountQuarantined: (409, "account_quarantined"),
    AccountBusy: (503, "account_busy"),
    Unauthenticated: (401, "permission_denied"),
    StoreUnavailable: (503, "service_unavailable"),
    Forbidden: (403, "permission_denied"),
    BodyTooLarge: (413, "request_too_large"),
    RequestTimedOut: (408, "request_timeout"),
}
RETRY_AFTER_SECONDS: dict[type[TallyError], int] = {AccountBusy: 1}
HTTP_CODES = {400: "validation_error", 401: "permission_denied", 403: "permission_denied", 404: "not_found",
              405: "invalid_operation", 409: "already_exists"}


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    body = ErrorResponse(code=code, message=message, http_status_code=status,
                         details={"context": details} if details else {})
    return Response(_encoder.encode(body), status_code=status, media_type="application/json", headers=headers)


def tally_error_response(path: str, exc: TallyError) -> Response:
    status, code = STATUS_OF.get(type(exc), (400, "invalid_operation"))
    if path.startswith("/v1/events"):
        EVENTS_REFUSED.labels(code).inc()
    retry_after = RETRY_AFTER_SECONDS.get(type(exc))
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return error_response(status, code, exc.message, exc.details, headers)


def store_down_response(exc: Exception) -> Response:
    log.error("store error %r", exc)
    return error_response(503, "service_unavailable", "the event store did not answer: the request may or may not "
                          "have been applied; retry it with the same event_id or idempotency_key")


async def _tally_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TallyError)
    return tally_error_response(request.url.path, exc)


async def _request_invalid(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}
    return error_response(400, "validation_error", "invalid request", problems)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = {"Allow": allowed_methods(request)} if exc.status_code == 405 else exc.headers
    return error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "http_client_error"), str(exc.detail),
                          headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's 405 names only the first route's). A path declared
    as it stands (`/v1/customers/search`) is its own resource: routes whose template merely matches it
    (`/v1/customers/{customer_id}`) do not add their methods."""
    matching = [route for route in _leaf_routes(request.app.routes) if route.matches(request.scope)[0] != Match.NONE]
    literal = [route for route in matching if "{" not in getattr(route, "path", "{")]
    methods = {method for route in literal or matching for method in getattr(route, "methods", None) or ()}
    return ", ".join(sorted(methods))


def _leaf_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """The routes themselves, looking into included routers."""
    for route in routes:
        router = getattr(route, "original_router", None)
        if router is not None:
            yield from _leaf_routes(router.routes)
        else:
            yield route


async def _store_down(_: Request, exc: Exception) -> Response:
    return store_down_response(exc)


async def _unexpected(_: Request, exc: Exception) -> Response:
    return unexpected_response(exc)


def unexpected_response(exc: Exception) -> Response:
    """An error no handler maps: logged, answered 500 (the server then sees it raised, and logs it too)."""
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TallyError, _tally_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RedisError, _store_down)
    app.add_exception_handler(Exception, _unexpected)
