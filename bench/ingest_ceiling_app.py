"""The ingest ceiling: parse the JSON body with msgspec and do one Redis XADD per event (pipelined for bulk).

Built like `tally api` served ingestion until it answered the hot routes ahead of FastAPI's middleware stack: a
FastAPI app with an ASGI middleware that answers the two routes straight from the scope (as api.fastpath.FastPath
does inside that stack; tally's api/fastpath.py HotFirst now answers before it), with redis-py's client, served by
uvicorn with the same options as cli.main._serve. No auth, validation, dedup, rate card or feed: what tally adds
over this is what the ratio shows (bench/PROFILE.md, *Single-event ingest at the ceiling*, says what this ceiling
pays that tally no longer does).
"""

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.routetable import read_body

SINGLE, BULK = "/ceiling/events", "/ceiling/events/bulk"


class Event(msgspec.Struct):
    event_name: str
    external_customer_id: str
    event_id: str | None = None
    timestamp: str | None = None
    source: str | None = None
    properties: dict[str, str | int | float] = {}


class Bulk(msgspec.Struct):
    events: list[Event]


_event, _bulk = msgspec.json.Decoder(Event), msgspec.json.Decoder(Bulk)
_encode = msgspec.msgpack.Encoder().encode


def stream(event: Event) -> str:
    return f"ceiling:{event.external_customer_id}:log"


class Ingest:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in (SINGLE, BULK):
            await self.app(scope, receive, send)
            return
        redis: Redis = scope["app"].state.redis
        body = await read_body(receive)
        if scope["path"] == SINGLE:
            event = _event.decode(body)
            await redis.xadd(stream(event), {"e": _encode(event)})
            reply = b'{"message":"Event accepted for processing","event_id":"%s"}' % (event.event_id or "").encode()
        else:
            events = _bulk.decode(body).events
            async with redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.xadd(stream(event), {"e": _encode(event)})
                await pipe.execute()
            reply = b'{"message":"Events accepted for processing","accepted":"%d","duplicates":"0"}' % len(events)
        await Response(reply, status_code=202, media_type="application/json")(scope, receive, send)


def create_app(redis_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = Redis.from_url(redis_url)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(Ingest)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.redis_url), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
