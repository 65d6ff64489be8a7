"""HTTP load generator, run as its own process: open-loop at a fixed rate, or closed-loop for capacity.

Open loop: request i is due at t0 + i/rate whatever happened before; its latency runs from that scheduled
instant to the last byte of the response, so a slow server cannot hide its queue (no coordinated omission).
A due request waits for a free keep-alive connection when all are busy, and that wait counts too.
Prints one JSON object on stdout. Raw asyncio streams on uvloop keep the generator's own cost small.
"""

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

TIMEOUT = 5.0
Result = dict[str, float | int]


class Sample:
    """due: scheduled; woke: the generator got round to it; sent: a connection was free; done: last byte read."""

    __slots__ = ("done", "due", "sent", "status", "woke")

    def __init__(self, due: float) -> None:
        self.due, self.woke, self.sent, self.done, self.status = due, 0.0, 0.0, 0.0, 0


class Client:
    """A pool of keep-alive HTTP/1.1 connections to one loopback port, one request in flight on each."""

    def __init__(self, port: int, headers: list[str]) -> None:
        self.port = port
        self.extra = "".join(f"{h}\r\n" for h in headers)
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def open(self, count: int) -> None:
        for _ in range(count):
            self.idle.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    async def get(self, path: str, sample: Sample) -> None:
        sample.woke = time.perf_counter()
        conn = await self.idle.get()
        sample.sent = time.perf_counter()
        try:
            sample.status = await asyncio.wait_for(self._exchange(conn, path), TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            sample.status = -1
            conn[1].close()
            try:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                sample.done = time.perf_counter()
                return  # the pool shrinks; the orchestrator's timeout bounds the run if it empties
        sample.done = time.perf_counter()
        self.idle.put_nowait(conn)

    async def _exchange(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], path: str) -> int:
        reader, writer = conn
        writer.write(f"GET {path} HTTP/1.1\r\nhost: bench\r\n{self.extra}\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"content-length:")
        if at < 0:
            raise ValueError("response without content-length")
        length = int(lower[at + 15:lower.find(b"\r\n", at)])
        await reader.readexactly(length)
        return status


def summary(samples: list[Sample], window: float, sent_from: str) -> Result:
    ok = sorted(s.done - (s.due if sent_from == "due" else s.sent) for s in samples if s.status == 200)
    lags = sorted(s.woke - s.due for s in samples if s.woke)
    waits = sorted(s.sent - s.woke for s in samples if s.sent)

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")

    return {
        "requests": len(samples), "ok": len(ok), "errors": len(samples) - len(ok),
        "achieved_rps": len(ok) / window if window > 0 else 0.0,
        "p50_ms": pct(ok, 0.50), "p90_ms": pct(ok, 0.90), "p99_ms": pct(ok, 0.99), "p999_ms": pct(ok, 0.999),
        "max_ms": ok[-1] * 1000 if ok else float("nan"),
        "generator_lag_p99_ms": pct(lags, 0.99), "connection_wait_p99_ms": pct(waits, 0.99),
    }


async def paced(
    send: Callable[[Sample], Coroutine[Any, Any, None]], rate: float, warmup: float, duration: float
) -> Result:
    """Open loop: start one `send` per 1/rate seconds on schedule, latency measured from the scheduled instant."""
    total = int(rate * (warmup + duration))
    start = time.perf_counter() + 0.05
    samples: list[Sample] = []
    tasks: list[asyncio.Task[None]] = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sample = Sample(due)
        samples.append(sample)
        tasks.append(asyncio.create_task(send(sample)))
    await asyncio.gather(*tasks)
    measured = [s for s in samples if s.due >= start + warmup]
    window = max(s.done for s in measured) - (start + warmup)
    return summary(measured, window, "due") | {"offered_rps": rate, "seconds": duration, "all_requests": total}


async def open_loop(client: Client, paths: list[str], rate: float, warmup: float, duration: float) -> Result:
    rng = random.Random(11)
    return await paced(lambda sample: client.get(rng.choice(paths), sample), rate, warmup, duration)


async def back_to_back(
    send: Callable[[Sample], Coroutine[Any, Any, None]], workers: int, warmup: float, duration: float
) -> Result:
    """Closed loop: `workers` senders back to back; the window ends when the last measured request completes."""
    samples: list[Sample] = []
    start = time.perf_counter()
    stop_at = start + warmup + duration
    done = [0]

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            sample = Sample(time.perf_counter())
            await send(sample)
            done[0] += 1
            if sample.due >= start + warmup:
                samples.append(sample)

    await asyncio.gather(*(worker() for _ in range(workers)))
    window = max((s.done for s in samples), default=stop_at) - (start + warmup)
    return summary(samples, window, "sent") | {"workers": workers, "seconds": duration, "all_requests": done[0]}


async def closed_loop(client: Client, paths: list[str], workers: int, warmup: float, duration: float) -> Result:
    rng = random.Random(13)
    return await back_to_back(lambda sample: client.get(rng.choice(paths), sample), workers, warmup, duration)


async def main(args: argparse.Namespace) -> None:
    paths = [args.path.format(i=i) for i in range(args.count)]
    client = Client(args.port, args.header)
    await client.open(args.connections)
    if args.closed:
        result = await closed_loop(client, paths, args.connections, args.warmup, args.duration)
    else:
        result = await open_loop(client, paths, args.rate, args.warmup, args.duration)
    json.dump(result | {"generator_cpu_s": time.process_time()}, sys.stdout)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="path template, {i} = 0..count-1, e.g. /x/{i:05d}")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--closed", action="store_true", help="closed loop: --connections workers, back to back")
    return parser.parse_args(argv)


if __name__ == "__main__":
    uvloop.run(main(parse(sys.argv[1:])))
