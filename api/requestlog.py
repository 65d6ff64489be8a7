"""One canonical log line per request: method, path, query, status, duration. The path and query are logged as
the client sent them on the request line (percent-encoded), with any other byte that is not printable ASCII, a
space or a quote percent-encoded too, so a request can never add a line or a field to the log."""

import logging
import time
from typing import Any
from urllib.parse import quote_from_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tally.api")
# Printable ASCII except space, '"' and '\\' stay as they are; '%' stays, so what was percent-encoded reads as sent.
SAFE = bytes(c for c in range(0x21, 0x7F) if c not in b'"\\')


def escaped(raw: bytes) -> str:
    return quote_from_bytes(raw, safe=SAFE)


def request_target(scope: Scope) -> tuple[str, str]:
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    return escaped(raw_path), escaped(scope.get("query_string", b""))


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            path, query = request_target(scope)
            log.info("request method=%s path=%s query=%s status=%d ms=%.2f", escaped(scope["method"].encode()),
                     path, query or "-", status["code"], (time.perf_counter() - started) * 1000)
