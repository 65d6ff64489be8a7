"""The hot routes served without FastAPI's per-request machinery: same declarations, same answers, less overhead.

The routes of the table (api/hot.py: usage ingestion, single and bulk, and the real-time balance) are matched here
straight from the ASGI scope and answered by api/routetable.py's `respond`, the same call their FastAPI routes
answer with; every other request (and these routes' OpenAPI description) goes through FastAPI as usual.

`FastPath` does it inside FastAPI's middleware stack. `HotFirst` does it before that stack, when the stack has
nothing else to do for these routes (FastAPI's own telemetry is off: api/app.py decides at start-up), doing itself
what the stack would: the app in the scope, the request log if on, the body bounds (api/limits.py), and the guard
that answers an unexpected error 500 with the ErrorResponse shape and raises it on to the server, as Starlette's
ServerErrorMiddleware does with the handler api/errors.py installs.
"""

from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import unexpected_response
from api.hot import HOT_ROUTES
from api.limits import BodyBounds, BodyLimits
from api.requestlog import RequestLog
from api.routetable import TableRoute, respond


class FastPath:
    def __init__(self, app: ASGIApp, routes: Sequence[TableRoute] = HOT_ROUTES) -> None:
        self.app = app
        self._exact = {(r.method, r.path): r for r in routes if not r.path_names}
        self._templated = [r for r in routes if r.path_names]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self.match(scope["method"], scope["path"])
            if found is not None:
                response = await respond(found[0], scope, receive, found[1])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def match(self, method: str, path: str) -> tuple[TableRoute, dict[str, str]] | None:
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}
        for route in self._templated:
            if route.method == method:
                matched = route.regex.match(path)
                if matched is not None:
                    return route, matched.groupdict()
        return None


class HotFirst:
    """`serves(scope)` says whether a request is for a hot route; `__call__` answers it (see the module's
    docstring). `app` is the FastAPI app whose state the routes read."""

    def __init__(self, app: Any, bounds: BodyBounds, request_log: bool) -> None:
        self.app = app
        self.fast = FastPath(_unreachable)
        inner: ASGIApp = BodyLimits(self.fast, bounds=bounds)
        self._chain = RequestLog(inner) if request_log else inner

    def serves(self, scope: Scope) -> bool:
        return scope["type"] == "http" and self.fast.match(scope["method"], scope["path"]) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.app
        started = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._chain(scope, receive, guarded)
        except Exception as exc:
            if not started:
                await unexpected_response(exc)(scope, receive, send)
            raise


async def _unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError(f"HotFirst served {scope['method']} {scope['path']}, which no hot route matches")
