"""The reads ceiling: a bare FastAPI app whose one route does one Redis GET and returns the value as it is.

Served by uvicorn exactly as `tally api` is (cli.main._serve: uvloop/httptools when installed, log level
warning, no access log), so the only difference measured is what tally does per request beyond one GET.
"""

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from redis.asyncio import Redis

KEY_PREFIX = "ceiling:value:"


def create_app(redis_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = Redis.from_url(redis_url)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/ceiling/{key}")
    async def read(key: str, request: Request) -> Response:
        value = await request.app.state.redis.get(KEY_PREFIX + key)
        return Response(value, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.redis_url), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
