"""Hot wallet: 8 clients debit one wallet over HTTP for a fixed time, through 1 and through 2 `tally api` processes
(and `tally projector`), against a bare endpoint that XADDs each request to one stream, measured in the same run.

    .venv/bin/python -m bench.hotwallet [--seconds 6] [--fsync everysec]     runnable alone, prints its rows
"""

import argparse
import asyncio
import os
import sys
from typing import Any

import httpx

from bench.hot_clients import HotRun, book_problems, create_wallet, post_for, read_books
from bench.machine import REDIS_CPU, SUBJECT_CPU, CpuMeter, own_redis, pin, spawn, stop_process, unpin
from bench.reads import API_KEY, server, tally_argv, tally_env
from bench.report import Row, ratio, text_table, verdict
from cli.stores import free_port

CLIENTS = 8
INITIAL = 100_000_000
TARGET = 300.0
HEADERS = {"x-api-key": API_KEY}


def ceiling_body(client: int, n: int) -> dict[str, Any]:
    return {"event_name": "debit", "external_customer_id": "hot", "event_id": f"hot-{client}-{n}"}


def no_receipt(response: httpx.Response) -> str:
    return ""


async def measured(meter: CpuMeter, urls: list[str], path: str, seconds: float, **options: Any) -> tuple[HotRun, str]:
    """The run, and the CPU it cost: per process, per acknowledged request, and the rate one whole core would
    allow the server processes (what a shared, busy machine cannot hide)."""
    meter.start()
    run = await post_for(urls, path, HEADERS, seconds, CLIENTS, **options)
    per = {name: meter.cpu_seconds(name) / max(run.acknowledged, 1) * 1000 for name in meter.pids}
    cost = ", ".join(f"{name} {ms:.2f} ms" for name, ms in per.items())
    served = sum(ms for name, ms in per.items() if name.startswith(("api", "server")))
    core = f"; with a whole core for the server process(es), at most ~{1000 / served:,.0f}/s" if served else ""
    return run, f"{meter.stop()}; CPU per acknowledged request: {cost}{core}"


async def tally_row(urls: list[str], pids: dict[str, int], label: str, seconds: float,
                    ceiling: HotRun) -> Row:
    wallet_id = await create_wallet(urls[0], HEADERS, f"hot_{len(urls)}", INITIAL)
    run, cpu = await measured(CpuMeter(**pids), urls, f"/v1/wallets/{wallet_id}/debit", seconds)
    problems = book_problems(run, await read_books(urls[0], HEADERS, wallet_id), INITIAL)
    conflicts = run.statuses.get(409, 0)
    return Row(
        name=f"hot wallet, {CLIENTS} clients, {label}", value=f"{run.rate:,.0f} debits/s, 409s: {conflicts}",
        ceiling=f"{ceiling.rate:,.0f} req/s bare POST + XADD to one stream", ratio=ratio(run.rate, ceiling.rate),
        target=f"≥ {TARGET:,.0f} debits/s, no 409",
        verdict=verdict(run.rate >= TARGET and not conflicts and not problems),
        note=(f"POST /v1/wallets/{{id}}/debit (1 credit, an idempotency key each), {CLIENTS} keep-alive clients back "
              f"to back for {seconds:g} s, client i on API process i mod {len(urls)}; a 503 is retried with the same "
              f"key. {run.describe()}. Books: {problems or 'balance and transactions list agree'}"
              f" (final balance = initial minus acknowledged debits; each acknowledged debit listed once). {cpu}."),
    )


async def bench_hotwallet(fsync: str, seconds: float) -> list[Row]:
    with own_redis(fsync) as store:
        ports = [free_port(), free_port(), free_port()]
        env = tally_env(store.url)
        projector = spawn([sys.executable, "-c", "from cli.main import run; run()", "projector"], env)
        ceiling_argv = [sys.executable, "-m", "bench.ingest_ceiling_app", "--port", str(ports[2]),
                        "--redis-url", store.url]
        pin(os.getpid(), REDIS_CPU)
        try:
            with server(tally_argv(ports[0]), ports[0], env) as first, \
                    server(tally_argv(ports[1]), ports[1], env) as second, \
                    server(ceiling_argv, ports[2], {}) as bare:
                urls = [f"http://127.0.0.1:{port}" for port in ports]
                ceiling, ceiling_cpu = await measured(CpuMeter(server=bare.pid, redis=store.pid), [urls[2]],
                                                      "/ceiling/events", seconds, body=ceiling_body,
                                                      receipt=no_receipt, ok=202)
                pids = {"api": first.pid, "projector": projector.pid, "redis": store.pid}
                one = await tally_row(urls[:1], pids, "1 API process", seconds, ceiling)
                pids = {"api 1": first.pid, "api 2": second.pid, "projector": projector.pid, "redis": store.pid}
                two = await tally_row(urls[:2], pids, "2 API processes", seconds, ceiling)
        finally:
            unpin()
            stop_process(projector)
    for row in (one, two):
        row.note += (f" Ceiling: bench.ingest_ceiling_app (decode + one XADD to one stream), the same {CLIENTS} "
                     f"clients for {seconds:g} s: {ceiling.describe()}; {ceiling_cpu}. API processes and the ceiling "
                     f"pinned to CPU {SUBJECT_CPU}, redis and the clients to CPU {REDIS_CPU}, the projector unpinned.")
    return [one, two]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--fsync", choices=("everysec", "always"), default="everysec")
    args = parser.parse_args(argv)
    print(text_table(asyncio.run(bench_hotwallet(args.fsync, args.seconds))))


if __name__ == "__main__":
    main()
