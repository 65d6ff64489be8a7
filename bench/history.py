"""Flat in history: a wallet with 100,000 ledger transactions against a fresh one, in the same run.

Both wallets live in one store served by real `tally api` and `tally projector` processes. The history is appended
straight to the customer stream (debits in atomic appends of 500) and folded by the projector; then, alternating
between the two wallets, the bench measures the real-time and from_cache balance reads (open loop), a debit through
`POST /v1/wallets/{id}/debit` (one client, back to back) and the projector's CPU per event (a paced burst of debits
appended to one wallet, CPU of the projector process until it has folded them). Each figure is the median of the
rounds (5, alternating which wallet goes first), reported as a ratio to the fresh wallet's (target: within 1.2x,
i.e. ratio >= 0.83).

    .venv/bin/python -m bench.history [--history 100000] [--quick]
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from redis.asyncio import Redis

from bench import workload
from bench.fold import PARTITIONS, caught_up, heads
from bench.machine import REDIS_CPU, SUBJECT_CPU, CpuMeter, own_redis, pin, spawn, stop_process, wait_http
from bench.reads import API_KEY, ReadPlan, generate, tally_env
from bench.report import Row, ms, text_table, verdict
from cli.stores import free_port
from domain.events import AnyEvent, CreditsDebited, CreditsGranted
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection

FRESH, HISTORY = 0, 1  # workload customer indices: cus_00000 / wal_00000 and cus_00001 / wal_00001
CHUNK = 500
TARGET = 1 / 1.2
BALANCE = "/v1/wallets/{wallet}/balance/real-time"


class HistoryPlan:
    def __init__(self, history: int, quick: bool) -> None:
        self.history = history
        self.rounds = 3 if quick else 5
        self.read_rate, self.read_warmup, self.read_seconds = 50.0, 0.5, 1.5 if quick else 3.0
        self.debits = 100 if quick else 250
        self.burst = 1000 if quick else 3000


def debit(tag: str, n: int, i: int) -> CreditsDebited:
    return CreditsDebited(
        id=f"evt_{tag}_{n:08d}", at=workload.BASE_TIME + timedelta(microseconds=n), wallet_id=workload.wallet_id(i),
        transaction_id=f"wtx_{tag}_{n:08d}", credits=Decimal("0.01"), reason="MANUAL_BALANCE_DEBIT",
        created_by="bench",
    )


async def create(store: EventStore, i: int) -> None:
    """A wallet with credits enough for every debit of the run."""
    grant = CreditsGranted(
        id=f"evt_hist_grant_{i}", at=workload.BASE_TIME, wallet_id=workload.wallet_id(i),
        transaction_id=f"wtx_hist_grant_{i}", credits=Decimal(10_000_000), reason="PURCHASED_CREDIT_DIRECT",
        created_by="bench",
    )
    await store.index_wallet(workload.wallet_id(i), workload.ref(i))
    await store.append(workload.ref(i), [workload.wallet_created(i), grant])


async def fill(store: EventStore, history: int) -> float:
    """Append `history` debits to the history wallet's stream, CHUNK per atomic append; returns the seconds."""
    started = time.perf_counter()
    for start in range(0, history, CHUNK):
        events: list[AnyEvent] = [debit("fill", n, HISTORY) for n in range(start, min(history, start + CHUNK))]
        await store.append(workload.ref(HISTORY), events)
    return time.perf_counter() - started


async def wait_folded(redis: Redis, projection: Projection, timeout: float) -> float:
    """Poll until every partition's checkpoint reached the feed head it has now; returns the seconds."""
    keys, started = projection.keys, time.perf_counter()
    targets = await heads(projection)
    while not await caught_up(redis, keys, targets):
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the projector did not catch up")
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


async def burst_cpu(store: EventStore, redis: Redis, projection: Projection, projector_pid: int, i: int, tag: str,
                    count: int) -> float:
    """Projector CPU ms per event while it folds `count` debits appended to wallet i, 20 every 10 ms."""
    meter = CpuMeter(projector=projector_pid)
    meter.start()
    for start in range(0, count, 20):
        await store.append_each([(workload.ref(i), debit(tag, n, i), None) for n in range(start, start + 20)])
        await asyncio.sleep(0.01)
    await wait_folded(redis, projection, 120)
    return meter.cpu_seconds("projector") * 1000 / count


def debit_latencies(port: int, wallet: str, count: int) -> list[float]:
    """`count` debits through the API, one after the other; each one's latency in ms."""
    headers = {"x-api-key": API_KEY}
    found = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = client.post(f"/v1/wallets/{wallet}/debit", json={"credits": "0.01"})
            found.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"debit -> {response.status_code}: {response.text[:300]}")
    return found


def transactions_total(port: int, wallet: str) -> int:
    response = httpx.get(f"http://127.0.0.1:{port}/v1/wallets/{wallet}/transactions?limit=1",
                         headers={"x-api-key": API_KEY}, timeout=30)
    response.raise_for_status()
    total: int = response.json()["pagination"]["total"]
    return total


def read_p50(port: int, pid: int, redis_pid: int, path: str, plan: HistoryPlan) -> tuple[float, float]:
    """p50 latency and the API process's CPU per request (ms), open loop on one wallet."""
    read = ReadPlan(1, plan.read_rate, plan.read_warmup, plan.read_seconds, 0.0, 1)
    got: dict[str, Any] = generate(port, path, read, pid, redis_pid, False)
    if got["errors"]:
        raise RuntimeError(f"{got['errors']} errors reading {path}")
    return float(got["p50_ms"]), float(got["server_ms_per_request"])


def row(name: str, fresh: list[float], old: list[float], unit: str, plan: HistoryPlan, note: str) -> Row:
    """The median of the rounds for each wallet (the same rule for both; a best-of picked whichever wallet had one
    lucky round on a shared machine); ratio = fresh / history."""
    best_fresh, best_old = statistics.median(fresh), statistics.median(old)
    share = best_fresh / best_old
    show = ms if unit == "ms" else (lambda v: f"{v:.3f} ms CPU/event")
    return Row(name=name, value=f"{show(best_old)} ({plan.history:,} tx)", ceiling=f"{show(best_fresh)} (fresh)",
               ratio=share, target="within 1.2x of the fresh wallet", verdict=verdict(share >= TARGET),
               note=f"{note} Rounds: history {', '.join(show(v) for v in old)}; fresh "
                    f"{', '.join(show(v) for v in fresh)}.")


MEASURES = ("real-time", "from_cache", "real-time cpu", "from_cache cpu", "debit", "cpu")


class Processes:
    def __init__(self, port: int, api: int, projector: int, redis: int) -> None:
        self.port, self.api, self.projector, self.redis = port, api, projector, redis


async def measure_wallet(got: dict[str, dict[int, list[float]]], round_: int, i: int, wallet: str, p: Processes,
                         store: EventStore, projection: Projection, plan: HistoryPlan) -> None:
    """One round of every figure for wallet i."""
    path = BALANCE.format(wallet=wallet)
    for mode, suffix in (("real-time", ""), ("from_cache", "?from_cache=true")):
        p50, cpu = read_p50(p.port, p.api, p.redis, path + suffix, plan)
        got[mode][i].append(p50)
        got[f"{mode} cpu"][i].append(cpu)
    got["debit"][i].append(statistics.median(debit_latencies(p.port, wallet, plan.debits)))
    await wait_folded(store.redis, projection, 60)
    got["cpu"][i].append(await burst_cpu(store, store.redis, projection, p.projector, i, f"b{round_}", plan.burst))


def cpu_note(got: dict[str, dict[int, list[float]]], mode: str) -> str:
    fresh, old = statistics.median(got[f"{mode} cpu"][FRESH]), statistics.median(got[f"{mode} cpu"][HISTORY])
    return (f"API CPU per request (median of the rounds): history {old:.2f} ms, fresh {fresh:.2f} ms, ratio "
            f"{fresh / old * 100:.0f} %.")


async def bench_history(fsync: str, plan: HistoryPlan) -> list[Row]:
    wallets = {FRESH: workload.wallet_id(FRESH), HISTORY: workload.wallet_id(HISTORY)}
    with own_redis(fsync) as server:
        redis = Redis.from_url(server.url)
        keys = Keys(PARTITIONS)
        store, projection = EventStore(redis, keys, 35 * 24 * 3600), Projection(redis, keys)
        argv = [sys.executable, "-c", "from cli.main import run; run()"]
        env = tally_env(server.url)
        port = free_port()
        api = spawn([*argv, "api", "--host", "127.0.0.1", "--port", str(port), "--api-key", API_KEY], env)
        projector = spawn([*argv, "projector"], env)
        try:
            pin(api.pid, SUBJECT_CPU)
            pin(projector.pid, SUBJECT_CPU)
            wait_http(port, api)
            for i in wallets:
                await create(store, i)
            appended = await fill(store, plan.history)
            folded = await wait_folded(redis, projection, 600)
            total = transactions_total(port, wallets[HISTORY])
            if total < plan.history:
                raise RuntimeError(f"set-up is wrong: the history wallet lists {total} transactions")
            got: dict[str, dict[int, list[float]]] = {name: {FRESH: [], HISTORY: []} for name in MEASURES}
            for r in range(plan.rounds):
                for i in (FRESH, HISTORY) if r % 2 == 0 else (HISTORY, FRESH):  # alternate who goes first
                    await measure_wallet(got, r, i, wallets[i], Processes(port, api.pid, projector.pid, server.pid),
                                         store, projection, plan)
        finally:
            stop_process(api)
            stop_process(projector)
            await redis.aclose()
    setup = (f"History: {plan.history:,} debits appended in {appended:.1f} s ({CHUNK} per atomic append), folded by "
             f"`tally projector` in {folded:.1f} s; the history wallet lists {total:,} transactions.")
    return [
        row("history: read real-time p50", got["real-time"][FRESH], got["real-time"][HISTORY], "ms", plan,
            f"Open loop {plan.read_rate:.0f} req/s for {plan.read_seconds:g} s per round. {cpu_note(got, 'real-time')} "
            f"{setup}"),
        row("history: read from_cache p50", got["from_cache"][FRESH], got["from_cache"][HISTORY], "ms", plan,
            f"Open loop {plan.read_rate:.0f} req/s for {plan.read_seconds:g} s per round. "
            f"{cpu_note(got, 'from_cache')}"),
        row("history: debit p50", got["debit"][FRESH], got["debit"][HISTORY], "ms", plan,
            f"{plan.debits} debits per round through POST /v1/wallets/{{id}}/debit, one client, back to back."),
        row("history: projector CPU per event", got["cpu"][FRESH], got["cpu"][HISTORY], "cpu", plan,
            f"A burst of {plan.burst:,} debits appended 20 every 10 ms to one wallet; CPU of the `tally projector` "
            "process until folded, per event."),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=100_000, help="transactions of the history wallet")
    parser.add_argument("--quick", action="store_true", help="shorter measurement windows")
    parser.add_argument("--fsync", choices=("everysec", "always"), default="everysec")
    args = parser.parse_args(argv)
    pin(os.getpid(), REDIS_CPU)  # with the load generator, as the other sections run it
    print(text_table(asyncio.run(bench_history(args.fsync, HistoryPlan(args.history, args.quick)))))


if __name__ == "__main__":
    main()
