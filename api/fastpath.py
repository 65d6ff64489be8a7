"""The hot routes served without FastAPI's per-request machinery: same handlers, same errors, less overhead.

Usage ingestion (single and bulk) and the real-time balance are dispatched here straight from the ASGI scope;
every other request (and these routes' OpenAPI description) goes through FastAPI as usual.
"""

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

import msgspec
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import principal_of
from api.balances import read_balance
from api.body import decode_body
from api.bounded import check_id
from api.errors import store_down_response, tally_error_response
from api.events import accept_bulk, accept_event, decode_bulk
from api.query import refuse_unknown
from api.usage_schemas import IngestEventRequest
from domain.errors import TallyError, ValidationFailed

BALANCE_PREFIX, BALANCE_SUFFIX = "/v1/wallets/", "/balance/real-time"
BALANCE_QUERY = frozenset({"expand", "from_cache"})  # the FastAPI route's declared parameters (api/wallets.py)
# The spellings FastAPI (pydantic) accepts for a bool query parameter; anything else, "" included, is a 400.
TRUE, FALSE = {"1", "true", "t", "yes", "y", "on"}, {"0", "false", "f", "no", "n", "off"}
_event = msgspec.json.Decoder(IngestEventRequest)
Handler = Callable[[Scope, Receive], Awaitable[Response]]


class FastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._route(scope) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await handler(scope, receive)
        except TallyError as exc:
            response = tally_error_response(scope["path"], exc)
        except RedisError as exc:
            response = store_down_response(exc)
        await response(scope, receive, send)

    def _route(self, scope: Scope) -> Handler | None:
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == "/v1/events":
            return self._ingest
        if method == "POST" and path == "/v1/events/bulk":
            return self._bulk
        if method == "GET" and path.startswith(BALANCE_PREFIX) and path.endswith(BALANCE_SUFFIX):
            wallet_id = path[len(BALANCE_PREFIX):-len(BALANCE_SUFFIX)]
            if wallet_id and "/" not in wallet_id:
                return self._balance
        return None

    async def _ingest(self, scope: Scope, receive: Receive) -> Response:
        _no_query(scope)
        state = scope["app"].state
        caller = principal_of(state.api_keys, _api_key(scope))
        body = decode_body(_event, await _body(receive))
        return await accept_event(body, caller, state.accounts, state.max_future_skew)

    async def _bulk(self, scope: Scope, receive: Receive) -> Response:
        _no_query(scope)
        state = scope["app"].state
        caller = principal_of(state.api_keys, _api_key(scope))
        body = decode_bulk(await _body(receive))
        return await accept_bulk(body, caller, state.accounts, state.max_future_skew)

    async def _balance(self, scope: Scope, receive: Receive) -> Response:
        state = scope["app"].state
        caller = principal_of(state.api_keys, _api_key(scope))
        wallet_id = check_id("wallet_id", scope["path"][len(BALANCE_PREFIX):-len(BALANCE_SUFFIX)])
        query = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        refuse_unknown(query, BALANCE_QUERY)
        expand = query.get("expand", [None])[-1]
        return await read_balance(wallet_id, caller, state.accounts, expand, _flag(query, "from_cache"))


def _no_query(scope: Scope) -> None:
    """The ingestion routes declare no query parameter: any is a 400, as on the FastAPI routes."""
    if scope["query_string"]:
        refuse_unknown(parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True), frozenset())


def _api_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return str(value.decode("latin-1"))
    return None


async def _body(receive: Receive) -> bytes:
    """The whole body; api/limits.py bounds its size and the time it takes. A truncated body is never decoded."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationFailed("the client disconnected before the request body ended")
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _flag(query: dict[str, list[str]], name: str) -> bool:
    value = query.get(name, ["false"])[-1].lower()
    if value not in TRUE | FALSE:
        raise ValidationFailed(f"{name} must be a boolean", {name: value})
    return value in TRUE
