"""uvicorn with tally's transport bounds: request line + headers limited in bytes and in time, idle keep-alive
closed, and a concurrency limit answered 503 with the ErrorResponse shape.

uvicorn's httptools protocol (what `uvicorn[standard]` runs) has no header size limit (h11's
`h11_max_incomplete_event_size` does not apply to it) and no timer until the first request's headers are in: a
client that connects and sends nothing, or dribbles its request line and headers, holds the connection for ever.
The guarded protocol below adds both: headers over `header_limit_bytes` are a 431, headers not complete within
`header_timeout_seconds` of the connection opening (or of the first byte of a later request) are a 408, and the
connection is closed. Bodies are bounded in api/limits.py, where the route is known."""

import asyncio
import contextlib
import gc
import signal
import socket
import sys
from types import FrameType
from typing import Any

import msgspec
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import error_response
from api.schemas import ErrorResponse

_encoder = msgspec.json.Encoder()
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
YOUNG_OBJECTS = 20_000
"""Objects allocated (less those freed) before a young collection (CPython's default: 700). A bulk of 1,000 events
keeps ~15,000 objects alive while it is decoded and appended: with 700, each bulk ran ~20 young collections that
walked them and pushed them into the older generations, walked again there."""


class TransportBounds(msgspec.Struct, frozen=True, kw_only=True):
    """Built from the process's Settings by cli/components.py (the defaults live there, once)."""

    header_limit_bytes: int
    header_timeout_seconds: float
    keep_alive_seconds: int
    max_concurrency: int


STARTUP_FAILED = 3
"""Exit status of a process whose server never started (uvicorn's own)."""


def serve(asgi: Any, host: str, port: int, bounds: TransportBounds, sockets: list[socket.socket] | None = None
          ) -> None:
    """Serve until SIGTERM (or SIGINT), then return; on `sockets` already bound (`tally api --workers`) rather than
    on host:port. uvicorn shuts down on the signal and raises it again once done; that second SIGTERM is taken
    here, so the caller's clean-up runs (`tally dev` stops the redis-server it started and removes its data dir's
    dev-store.json) instead of the process dying on it. A SIGTERM that comes before uvicorn takes its signals (an
    API worker whose parent is killed while it starts) stops the server as soon as it has started, rather than being
    lost. A server that never started exits with STARTUP_FAILED."""
    settle_heap()
    config = uvicorn.Config(asgi, host=host, port=port, log_level="warning", access_log=False,
                            http=guarded_protocol(bounds), timeout_keep_alive=bounds.keep_alive_seconds)
    server = uvicorn.Server(config)

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True  # uvicorn's own startup leaves it set, and then shuts down

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=sockets)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not server.started:
        sys.exit(STARTUP_FAILED)


def settle_heap() -> None:
    """Before serving: what start-up built (modules, the app, its routes and schemas: most of the process's objects)
    is collected once and then left out of every later collection (gc.freeze), and young collections are made rarer
    (YOUNG_OBJECTS). Without it, a bulk ingest spent ~5 us of its ~16 us an event in the collector, most of it in
    full collections that walked the whole start-up heap (bench/PROFILE.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])


def guarded_protocol(bounds: TransportBounds) -> type[HttpToolsProtocol]:
    class Guarded(GuardedHttpTools):
        pass

    Guarded.bounds = bounds
    return Guarded


def refusal(status: int, code: str, message: str) -> bytes:
    """A complete HTTP response with an ErrorResponse body, written straight to the transport."""
    body = _encoder.encode(ErrorResponse(code=code, message=message, http_status_code=status))
    head = (f"HTTP/1.1 {status} ".encode() + REASONS[status] + b"\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode())
    return head + body


class HeaderTooLarge(Exception):
    """Raised from a parser callback: the parser stops and `send_400_response` writes the 431 instead."""


class GuardedHttpTools(HttpToolsProtocol):
    bounds: TransportBounds  # set by guarded_protocol on the subclass it returns

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._in_headers, self._began, self._header_bytes = True, False, 0
        self._refusal: bytes | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._began = False
        super().data_received(data)
        if not self._in_headers or self.transport.is_closing():
            return
        self._arm_header_timer()
        if not self._began:  # a chunk that started a request is measured exactly when its headers end
            self._header_bytes += len(data)
            if self._header_bytes > self.bounds.header_limit_bytes:
                self._write_and_close(self._too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers, self._began, self._header_bytes = True, True, 0  # the timer is armed in data_received

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.bounds.header_limit_bytes:
            self._refusal = self._too_large()
            raise HeaderTooLarge
        if not self._over_concurrency():
            super().on_headers_complete()
            return
        app, self.app = self.app, _busy(self.bounds.max_concurrency)
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is not None and not self.cycle.more_body and not self.pipeline:
            self._in_headers, self._header_bytes = True, 0  # what comes next is the next request's head

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
        else:
            self._write_and_close(self._refusal)

    def _over_concurrency(self) -> bool:
        limit = self.bounds.max_concurrency
        return len(self.connections) > limit or len(self.tasks) >= limit

    def _too_large(self) -> bytes:
        limit = self.bounds.header_limit_bytes
        return refusal(431, "request_header_too_large", f"request line and headers exceed {limit} bytes")

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.bounds.header_timeout_seconds, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.scope is None:  # connected and sent nothing: close quietly
            self.transport.close()
            return
        seconds = self.bounds.header_timeout_seconds
        self._write_and_close(refusal(408, "request_timeout", f"request headers not received within {seconds} s"))

    def _write_and_close(self, response: bytes) -> None:
        self._cancel_header_timer()
        self.transport.write(response)
        self.transport.close()


def _busy(limit: int) -> Any:
    async def busy(scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(503, "service_unavailable",
                                  f"more than {limit} connections or requests in flight; retry shortly")
        response.headers["retry-after"] = "1"
        await response(scope, receive, send)

    return busy
