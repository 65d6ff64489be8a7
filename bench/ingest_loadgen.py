"""HTTP load generator for ingestion, run as its own process: POSTs usage events, one per request or in bulks.

Same discipline as bench.loadgen (whose Sample and summary it uses): open loop at a fixed rate (latency from
the scheduled instant, so a slow server cannot hide its queue) or closed loop with N keep-alive connections back to
back. Every event carries a unique event_id (`evt_<tag>_<n>`), so each one goes through the server's dedup check
and is appended. Prints one JSON object on stdout.
"""

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime

import uvloop

from bench.loadgen import TIMEOUT, Result, Sample, back_to_back, paced

ACCEPTED = 202
OK = 200  # bench.loadgen.summary counts status 200 as success: a 202 Accepted is recorded as OK
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Bodies:
    """Request bodies built on demand: Flexprice-shaped events for random (seeded) customers, unique ids."""

    def __init__(self, tag: str, customers: int, per_request: int, bulk: bool, seed: int) -> None:
        self.tag, self.customers, self.per_request, self.bulk = tag, customers, per_request, bulk
        self.rng = random.Random(seed)
        self.stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.events = 0

    def _event(self) -> str:
        n, self.events = self.events, self.events + 1
        customer = self.rng.randrange(self.customers)
        return (f'{{"event_name":"api_call","external_customer_id":"cus_{customer:05d}","event_id":'
                f'"evt_{self.tag}_{n:09d}","timestamp":"{self.stamp}","source":"bench",'
                f'"properties":{{"tokens":{100 + n % 900},"model":"small"}}}}')

    def next(self) -> bytes:
        if not self.bulk:
            return self._event().encode()
        return ('{"events":[' + ",".join(self._event() for _ in range(self.per_request)) + "]}").encode()


class Poster:
    """A pool of keep-alive HTTP/1.1 connections to one loopback port, one POST in flight on each."""

    def __init__(self, port: int, path: str, headers: list[str], count_duplicates: bool) -> None:
        self.port = port
        self.head = (f"POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
                     + "".join(f"{h}\r\n" for h in headers))
        self.count_duplicates = count_duplicates
        self.duplicates = 0
        self.idle: asyncio.Queue[Conn] = asyncio.Queue()

    async def open(self, count: int) -> None:
        for _ in range(count):
            self.idle.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    async def post(self, body: bytes, sample: Sample) -> None:
        sample.woke = time.perf_counter()
        conn = await self.idle.get()
        sample.sent = time.perf_counter()
        try:
            status = await asyncio.wait_for(self._exchange(conn, body), TIMEOUT)
            sample.status = OK if status == ACCEPTED else status
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            sample.status = -1
            conn[1].close()
            try:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                sample.done = time.perf_counter()
                return
        sample.done = time.perf_counter()
        self.idle.put_nowait(conn)

    async def _exchange(self, conn: Conn, body: bytes) -> int:
        reader, writer = conn
        writer.write(f"{self.head}content-length: {len(body)}\r\n\r\n".encode() + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"content-length:")
        if at < 0:
            raise ValueError("response without content-length")
        length = int(lower[at + 15:lower.find(b"\r\n", at)])
        reply = await reader.readexactly(length)
        if self.count_duplicates and status == ACCEPTED:
            self.duplicates += int(json.loads(reply).get("duplicates", 0))
        return status


async def open_loop(poster: Poster, bodies: Bodies, rate: float, warmup: float, duration: float) -> Result:
    return await paced(lambda sample: poster.post(bodies.next(), sample), rate, warmup, duration)


async def closed_loop(poster: Poster, bodies: Bodies, workers: int, warmup: float, duration: float) -> Result:
    return await back_to_back(lambda sample: poster.post(bodies.next(), sample), workers, warmup, duration)


async def main(args: argparse.Namespace) -> None:
    bodies = Bodies(args.tag, args.customers, args.per_request, args.bulk, args.seed)
    poster = Poster(args.port, args.path, args.header, args.bulk)
    await poster.open(args.connections)
    if args.closed:
        result = await closed_loop(poster, bodies, args.connections, args.warmup, args.duration)
    else:
        result = await open_loop(poster, bodies, args.rate, args.warmup, args.duration)
    per = args.per_request if args.bulk else 1
    result |= {"events_per_request": per, "events_per_s": float(result["achieved_rps"]) * per,
               "events_sent": bodies.events, "duplicates": poster.duplicates,
               "generator_cpu_s": time.process_time()}
    json.dump(result, sys.stdout)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--tag", required=True, help="event ids are evt_<tag>_<n>: unique per run")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--bulk", action="store_true", help='bodies {"events": [...]} of --per-request events')
    parser.add_argument("--per-request", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--closed", action="store_true", help="closed loop: --connections workers, back to back")
    return parser.parse_args(argv)


if __name__ == "__main__":
    uvloop.run(main(parse(sys.argv[1:])))
