"""CPU per single-event ingest inside the API process, without HTTP: the ASGI app called directly, CONCURRENCY
requests at a time (as the capacity bench's connections keep that many in flight).

    .venv/bin/python -m bench.ingest_cost --redis-url URL [--requests 20000] [--concurrency 16]

What it measures is what tally adds per POST /v1/events in its own process (the middleware chain, routing, auth, body
read and decode, the event, the dedup arguments, the append call, the response), not the HTTP server's framing,
which a bare endpoint pays alike; process CPU, so the other load on a shared machine inflates it less than
wall-clock figures. Run it from each tree compared (its own modules), alternated. Prints one JSON object.
"""

import argparse
import asyncio
import json
import os
import time
from typing import Any

import uvloop

from bench.fold import PARTITIONS
from bench.ingest import prepare
from bench.ingest_loadgen import Bodies
from cli import wiring
from cli.main import DEMO_PRINCIPAL, load_settings
from store.connect import connect

KEY = "bench-key"


def scope(length: int) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/v1/events", "raw_path": b"/v1/events", "root_path": "", "query_string": b"",
            "headers": [(b"host", b"bench"), (b"content-type", b"application/json"), (b"x-api-key", KEY.encode()),
                        (b"content-length", str(length).encode())],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def measure(url: str, requests: int, concurrency: int) -> dict[str, Any]:
    await prepare(url, 1000)
    settings = load_settings()
    app = wiring.build_app(settings, lambda: connect(url), wiring.api_keys(settings, KEY, DEMO_PRINCIPAL))
    statuses: dict[int, int] = {}
    bodies = Bodies(f"cost{os.getpid()}", 1000, 1, False, 7)

    async def post() -> None:
        body = bodies.next()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope(len(body)), receive, send)

    async def client(count: int) -> None:
        for _ in range(count):
            await post()

    async with app.router.lifespan_context(app):
        await asyncio.gather(*(client(200 // concurrency) for _ in range(concurrency)))  # warm
        statuses.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(requests // concurrency) for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = requests // concurrency * concurrency
    if set(statuses) != {202}:
        raise RuntimeError(f"statuses {statuses}")
    return {"requests": done, "cpu_us_per_request": cpu / done * 1e6, "wall_us_per_request": wall / done * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    os.environ["TALLY_REDIS_URL"] = args.redis_url
    os.environ.setdefault("TALLY_PARTITIONS", str(PARTITIONS))
    os.environ.setdefault("TALLY_REQUEST_LOG", "false")
    print(json.dumps(uvloop.run(measure(args.redis_url, args.requests, args.concurrency))))


if __name__ == "__main__":
    main()
