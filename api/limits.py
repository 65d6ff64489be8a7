"""Bounds on every request body: its size (Content-Length checked up front, chunked bodies counted as they arrive,
never buffered past the limit) and the time it may take to arrive. Over either, the answer is an ErrorResponse
(413 or 408) and the connection is closed, so the rest of the body is never read."""

import asyncio
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import tally_error_response
from domain.errors import BodyTooLarge, RequestTimedOut, TallyError

BULK_PATH = "/v1/events/bulk"
CLOSE = (b"connection", b"close")
TICK_SECONDS = 0.1  # how often body deadlines are checked while a read waits (at most timeout / 10)


class BodyBounds(msgspec.Struct, frozen=True, kw_only=True):
    """Built from the process's Settings by cli/components.py (the defaults live there, once)."""

    limit_bytes: int
    bulk_limit_bytes: int
    timeout_seconds: float

    def limit_for(self, path: str) -> int:
        return self.bulk_limit_bytes if path == BULK_PATH else self.limit_bytes


class BodyLimits:
    """ASGI middleware: wraps `receive` so the app (FastAPI or the fast path) sees a bounded body."""

    def __init__(self, app: ASGIApp, bounds: BodyBounds) -> None:
        self.app = app
        self.bounds = bounds
        self.deadlines = Deadlines(bounds.timeout_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, bodiless = _framing(scope)
        if bodiless:  # most GETs: nothing to bound, no wrapper on the hot read path
            await self.app(scope, receive, send)
            return
        limit = self.bounds.limit_for(scope["path"])
        body = BoundedBody(receive, send, declared, limit, self.deadlines)
        if body.declared is not None and body.declared > limit:
            await _refuse(scope, body, BodyTooLarge(*_too_large(limit)))
            return
        try:
            await self.app(scope, body.receive, body.send)
        except (BodyTooLarge, RequestTimedOut) as exc:
            if body.started:
                raise
            await _refuse(scope, body, exc)


class Deadlines:
    """The body reads waiting now, each with its deadline, checked by one timer every `tick` while any waits: one
    timer for all the requests of a process rather than one per read (each costs a timer set and cancelled, ~4 µs,
    where the body has nearly always arrived with the headers). A read past its deadline has its task cancelled,
    which the read turns into RequestTimedOut (as `asyncio.timeout` does: only its own cancellation)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tick = min(TICK_SECONDS, timeout / 10)
        self.waiting: dict[asyncio.Task[Any], BoundedBody] = {}
        self._timer: asyncio.TimerHandle | None = None

    def enter(self, task: asyncio.Task[Any], body: "BoundedBody") -> None:
        self.waiting[task] = body
        if self._timer is None:
            self._timer = task.get_loop().call_later(self.tick, self._check, task.get_loop())

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        for task, body in list(self.waiting.items()):
            if body.deadline <= now and not body.expired:
                body.expired = True
                task.cancel()
        if self.waiting:
            self._timer = loop.call_later(self.tick, self._check, loop)


class BoundedBody:
    """One request's body as the app reads it: counted, under a deadline; the response closes the connection
    when the body was not read to its end (so a refused or unread body is never drained)."""

    def __init__(self, receive: Receive, send: Send, declared: int | None, limit: int, deadlines: Deadlines) -> None:
        self._receive, self._send = receive, send
        self.declared, self.limit, self.deadlines = declared, limit, deadlines
        self.deadline = asyncio.get_running_loop().time() + deadlines.timeout
        self.received, self.started, self.complete, self.expired = 0, False, False, False

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        self.deadlines.enter(task, self)
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if self.expired and task.uncancel() <= cancelling:
                raise RequestTimedOut("the request body did not arrive in time",
                                      {"timeout_seconds": self.deadlines.timeout}) from None
            raise
        finally:
            del self.deadlines.waiting[task]
        if message["type"] != "http.request":
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            raise BodyTooLarge(*_too_large(self.limit))
        self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if not self.complete:
                message = {**message, "headers": [*message.get("headers", []), CLOSE]}
        await self._send(message)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length (None when absent or unreadable) and whether the request has no body at all."""
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return length, (not chunked and (length is None or length == 0))


def _too_large(limit: int) -> tuple[str, dict[str, int]]:
    return f"the request body is larger than {limit} bytes", {"limit_bytes": limit}


async def _refuse(scope: Scope, body: BoundedBody, exc: TallyError) -> None:
    response = tally_error_response(scope["path"], exc)
    await response(scope, body.receive, body.send)
