"""CPU per balance read inside the API process, without HTTP: the ASGI app called directly, one request at a time.

    .venv/bin/python -m bench.read_cost --redis-url URL [--requests 20000] [--customers 1000] [--mode real-time]

Run by bench.profile_reads --asgi against the reads bench's data, from each tree compared (its own modules). What
it measures is what tally adds per read in its own process (routing, auth, the store call, decode, fold, view,
encode), not the HTTP server's framing, which a bare endpoint pays alike; process CPU, so the other load on a
shared machine inflates it less than wall-clock figures. Prints one JSON object.
"""

import argparse
import gc
import json
import os
import random
import time
from typing import Any

import uvloop

from cli import wiring
from cli.main import DEMO_PRINCIPAL, load_settings
from store.connect import connect

PATH = "/v1/wallets/wal_{i:05d}/balance/real-time"
QUERY = {"from_cache": b"from_cache=true", "real-time": b""}


def scope(i: int, mode: str) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": PATH.format(i=i), "raw_path": PATH.format(i=i).encode(), "root_path": "",
            "query_string": QUERY[mode], "headers": [(b"host", b"bench"), (b"x-api-key", b"bench-key")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


class GcPauses:
    """A gc callback: each collection's generation and how long it took."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self.began)

    def summary(self) -> dict[int, dict[str, float]]:
        return {g: {"count": len(p), "max_ms": max(p, default=0) * 1e3, "total_ms": sum(p) * 1e3}
                for g, p in self.pauses.items()}


async def measure(url: str, requests: int, customers: int, mode: str, freeze: bool) -> dict[str, Any]:
    settings = load_settings()
    app = wiring.build_app(settings, lambda: connect(url), wiring.api_keys(settings, "bench-key", DEMO_PRINCIPAL))
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    rng = random.Random(7)
    pauses = GcPauses()
    if freeze:
        gc.freeze()
    async with app.router.lifespan_context(app):
        for i in range(customers):  # warm: every wallet located and read once
            await app(scope(i, mode), receive, send)
        order = [rng.randrange(customers) for _ in range(requests)]
        statuses.clear()
        gc.callbacks.append(pauses)
        cpu, wall = time.process_time(), time.perf_counter()
        for i in order:
            await app(scope(i, mode), receive, send)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        gc.callbacks.remove(pauses)
    if set(statuses) != {200}:
        raise RuntimeError(f"statuses {sorted(set(statuses))}")
    return {"mode": mode, "requests": requests, "cpu_us_per_request": cpu / requests * 1e6,
            "wall_us_per_request": wall / requests * 1e6,
            "gc": pauses.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--mode", choices=tuple(QUERY), default="real-time")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() once the app is built")
    args = parser.parse_args()
    os.environ["TALLY_REDIS_URL"] = args.redis_url
    print(json.dumps(uvloop.run(measure(args.redis_url, args.requests, args.customers, args.mode, args.freeze))))


if __name__ == "__main__":
    main()
