"""Routes declared as data: one `TableRoute` gives both the fast path's dispatch and the documented FastAPI route.

A declaration names the method, the path template (each `{name}` one segment holding an id), the query parameters
with their types and defaults, the request body's type and the call that serves it. `respond` answers a request
for it straight from the ASGI scope, without FastAPI's per-request dependency machinery (api/fastpath.py uses it);
`table_router` builds the FastAPI routes the OpenAPI document describes, which answer with the same `respond`.
A parameter or a route is therefore changed in one place, and both ways of serving it answer alike.
"""

import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from starlette.datastructures import State
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Receive, Scope

from api.auth import Caller, Principal, principal_of
from api.body import request_doc
from api.bounded import PathId, check_id
from api.errors import store_down_response, tally_error_response
from api.query import refuse_unknown
from domain.errors import TallyError, ValidationFailed

# The spellings FastAPI (pydantic) accepts for a bool query parameter; anything else, "" included, is a 400.
TRUE, FALSE = frozenset({"1", "true", "t", "yes", "y", "on"}), frozenset({"0", "false", "f", "no", "n", "off"})
QueryValue = str | bool | None


@dataclass(frozen=True)
class QueryParam:
    """A declared query parameter: text (the last value given) or a bool flag, and its default. `pattern` and
    `description` are documented; the route's call checks what the pattern states, with its own message."""

    name: str
    kind: type[str] | type[bool]
    default: QueryValue
    pattern: str | None = None
    description: str | None = None


class HotCall(NamedTuple):
    """One request to a table route, checked: the app's state, the caller, the path's ids, the declared query
    parameters' values and the raw body (empty when the route takes none)."""

    state: State
    caller: Principal
    path: Mapping[str, str]
    query: Mapping[str, QueryValue]
    body: bytes

    def text(self, name: str) -> str | None:
        value = self.query[name]
        assert value is None or isinstance(value, str)
        return value

    def flag(self, name: str) -> bool:
        value = self.query[name]
        assert isinstance(value, bool)
        return value


Call = Callable[[HotCall], Awaitable[Response]]


@dataclass(frozen=True)
class TableRoute:
    method: str
    path: str
    name: str  # the operation's name: FastAPI derives its summary and operationId from it
    call: Call
    doc: str
    tag: str
    responses: dict[int | str, dict[str, Any]]
    status: int = 200
    query: tuple[QueryParam, ...] = ()
    body: type | None = None  # the request body's type (documented; `call` decodes `HotCall.body`)
    regex: re.Pattern[str] = field(init=False, repr=False)
    path_names: tuple[str, ...] = field(init=False, repr=False)
    declared: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        regex, _, convertors = compile_path(self.path)  # the pattern Starlette matches the FastAPI route with
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "path_names", tuple(convertors))
        object.__setattr__(self, "declared", frozenset(param.name for param in self.query))


async def respond(route: TableRoute, scope: Scope, receive: Receive, path: Mapping[str, str]) -> Response:
    """The route's answer, its errors mapped through api/errors.py as on every route."""
    try:
        return await route.call(await _checked(route, scope, receive, path))
    except TallyError as exc:
        return tally_error_response(scope["path"], exc)
    except RedisError as exc:
        return store_down_response(exc)


async def _checked(route: TableRoute, scope: Scope, receive: Receive, path: Mapping[str, str]) -> HotCall:
    """Undeclared query parameters first, then the key (as on every FastAPI route: api/query.py, api/auth.py),
    then the path's ids, the declared parameters' values and the body."""
    query = _query(scope["query_string"], route.declared)
    state = scope["app"].state
    caller = principal_of(state.api_keys, _api_key(scope))
    ids = {name: check_id(name, value) for name, value in path.items()}
    values = {param.name: _value(param, query) for param in route.query}
    body = await read_body(receive) if route.body is not None else b""
    return HotCall(state, caller, ids, values, body)


def _query(raw: bytes, declared: frozenset[str]) -> dict[str, list[str]]:
    if not raw:
        return {}
    query = parse_qs(raw.decode("latin-1"), keep_blank_values=True)
    refuse_unknown(query, declared)
    return query


def _value(param: QueryParam, query: dict[str, list[str]]) -> QueryValue:
    given = query.get(param.name)
    if given is None:
        return param.default
    if param.kind is not bool:
        return given[-1]
    value = given[-1].lower()
    if value not in TRUE | FALSE:
        raise ValidationFailed(f"{param.name} must be a boolean", {param.name: value})
    return value in TRUE


def _api_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return str(value.decode("latin-1"))
    return None


async def read_body(receive: Receive) -> bytes:
    """The whole body; api/limits.py bounds its size and the time it takes. A truncated body is never decoded."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationFailed("the client disconnected before the request body ended")
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def table_router(routes: Sequence[TableRoute]) -> APIRouter:
    """The FastAPI routes of `routes`: documented from their declarations, answered by `respond`."""
    router = APIRouter()
    for route in routes:
        extra = request_doc(route.body) if route.body is not None else None
        router.add_api_route(route.path, _documented(route), methods=[route.method], name=route.name,
                             description=route.doc, status_code=route.status, responses=route.responses,
                             tags=[route.tag], openapi_extra=extra, route_class_override=_served_by(route))
    return router


def _served_by(route: TableRoute) -> type[APIRoute]:
    class Served(APIRoute):
        """A FastAPI route answered by `respond`: its dependant only documents the parameters."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            async def handle(request: Request) -> Response:
                return await respond(route, request.scope, request.receive, request.path_params)

            return handle

    return Served


def _documented(route: TableRoute) -> Callable[..., Awaitable[Response]]:
    """A function whose signature is the route's declaration, for FastAPI to document; it is never called."""

    async def endpoint(**_: object) -> Response:
        raise AssertionError(f"{route.name} is answered by api.routetable.respond")

    kw = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter(name, kw, annotation=PathId) for name in route.path_names]
    for param in route.query:
        kind: Any = param.kind if param.default is not None else param.kind | None
        query = Query(pattern=param.pattern, description=param.description)
        parameters.append(inspect.Parameter(param.name, kw, default=param.default, annotation=Annotated[kind, query]))
    parameters.append(inspect.Parameter("caller", kw, annotation=Caller))
    setattr(endpoint, "__signature__", inspect.Signature(parameters))  # noqa: B010 (a function has no such field)
    endpoint.__name__ = endpoint.__qualname__ = route.name
    endpoint.__doc__ = route.doc
    return endpoint
