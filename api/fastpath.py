"""The hot routes served without FastAPI's per-request machinery: same declarations, same answers, less overhead.

The routes of the table (api/hot.py: usage ingestion, single and bulk, and the real-time balance) are matched here
straight from the ASGI scope and answered by api/routetable.py's `respond`, the same call their FastAPI routes
answer with; every other request (and these routes' OpenAPI description) goes through FastAPI as usual.
"""

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from api.hot import HOT_ROUTES
from api.routetable import TableRoute, respond


class FastPath:
    def __init__(self, app: ASGIApp, routes: Sequence[TableRoute] = HOT_ROUTES) -> None:
        self.app = app
        self._exact = {(r.method, r.path): r for r in routes if not r.path_names}
        self._templated = [r for r in routes if r.path_names]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._match(scope["method"], scope["path"])
            if found is not None:
                response = await respond(found[0], scope, receive, found[1])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _match(self, method: str, path: str) -> tuple[TableRoute, dict[str, str]] | None:
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}
        for route in self._templated:
            if route.method == method:
                matched = route.regex.match(path)
                if matched is not None:
                    return route, matched.groupdict()
        return None
