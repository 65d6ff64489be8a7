"""Scenario 7: `tally replay` (blue/green rebuild, then the generation switch) while writes and reads go on.

Through the API (in process): producers top wallets up and post usage; readers ask for real-time and cached balances
without pause. Two real projectors fold. `tally replay` runs as its own process. Every read must answer 200, a
lane's successive real-time reads of a wallet never go down (there are only top-ups), and afterwards the live
generation (store.generation.live_generation) is the new one, caught up, and equal to the log.
"""

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from domain.identity import AccountRef
from store.generation import live_generation
from store.positions import parse
from tests.fault.scenarios.common import stage
from tests.support.faults import Row, at_live_generation, audit, stored_ledgers, wait_until_caught_up
from tests.support.faults_processes import TrackedProjectors, run_tally, tally_env
from tests.support.harness import API_KEY, PRINCIPALS, make_settings, running_app

PARTITIONS = 4
TENANT = PRINCIPALS[API_KEY]
STALL_S = 3.0  # the projectors follow the pointer within lease_ttl/3 and fold a few hundred events in milliseconds


@dataclass
class Traffic:
    client: httpx.AsyncClient
    rng: random.Random
    wallets: dict[str, str] = field(default_factory=dict)  # wallet id -> customer
    usage: dict[str, str] = field(default_factory=dict)  # acknowledged event id -> customer
    top_ups: dict[str, str] = field(default_factory=dict)  # acknowledged transaction id -> wallet id
    reads: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    backwards: Counter[str] = field(default_factory=Counter)
    stopping: bool = False
    serial: int = 0

    async def open_wallets(self, customers: int) -> None:
        for n in range(customers):
            reply = await self.client.post("/v1/wallets", json={"customer_id": f"cust_{n:02d}", "currency": "USD"})
            assert reply.status_code == 200, reply.text
            self.wallets[reply.json()["id"]] = f"cust_{n:02d}"

    async def write(self) -> None:
        while not self.stopping:
            self.serial += 1
            wallet = self.rng.choice(list(self.wallets))
            if self.rng.random() < 0.5:
                body = {"credits_to_add": str(self.rng.randint(1, 50)), "transaction_reason": "PURCHASED_CREDIT_DIRECT",
                        "idempotency_key": f"k{self.serial}"}
                reply = await self.client.post(f"/v1/wallets/{wallet}/top-up", json=body)
                if reply.status_code == 200:
                    self.top_ups[reply.json()["wallet_transaction"]["id"]] = wallet
            else:
                event = {"event_id": f"use_{self.serial:06d}", "event_name": "api_call",
                         "external_customer_id": self.wallets[wallet]}
                reply = await self.client.post("/v1/events", json=event)
                if reply.status_code == 202:
                    self.usage[event["event_id"]] = self.wallets[wallet]
            if reply.status_code >= 300:
                self.failures.append(f"write {reply.status_code}: {reply.text[:120]}")

    async def read(self) -> None:
        """Real-time reads of a wallet (balance and read position) never go back; nor do the positions cached
        reads were folded up to (a cached read of a wallet not folded yet answers exactly, so it is not compared)."""
        last: dict[tuple[str, str], tuple[Decimal, tuple[int, int]]] = {}
        while not self.stopping:
            wallet, cached = self.rng.choice(list(self.wallets)), self.rng.random() < 0.5
            reply = await self.client.get(f"/v1/wallets/{wallet}/balance/real-time"
                                          + ("?from_cache=true" if cached else ""))
            kind = "cached" if cached else "real-time"
            self.reads[f"{kind} {reply.status_code}"] += 1
            if reply.status_code != 200:
                self.failures.append(f"{kind} read {reply.status_code}: {reply.text[:120]}")
                continue
            body = reply.json()
            if cached and not body["is_cached_fallback"]:
                continue
            seen = (Decimal(body["credit_balance"]), parse(body["folded_position" if cached else "read_position"]))
            before = last.get((wallet, kind), (Decimal(0), (0, 0)))
            if seen[0] < before[0] or seen[1] < before[1]:
                self.backwards[kind] += 1
            last[(wallet, kind)] = seen


async def ledger_misses(store: Any, traffic: Traffic) -> int:
    """Acknowledged top-ups whose transaction is not in the wallet's ledger exactly once."""
    misses = 0
    for transaction_id, wallet in traffic.top_ups.items():
        ref = AccountRef(TENANT.tenant_id, TENANT.environment_id, traffic.wallets[wallet])
        ledger = (await stored_ledgers(store, ref)).get(wallet, [])
        misses += sum(1 for entry in ledger if entry.id == transaction_id) != 1
    return misses


async def run(tmp_path: Path, customers: int, before_s: float, after_s: float, seed: int) -> Row:
    started = time.monotonic()
    rng = random.Random(seed)
    async with stage(tmp_path, PARTITIONS) as st:
        procs = TrackedProjectors(st.url, PARTITIONS, st.logs, lease_ttl_ms="1000", block_ms="20", batch_size="200",
                                  log_level="WARNING")
        try:
            await procs.open()
            for name in (procs.start(), procs.start()):
                await procs.wait_joined(st.redis, name)
            async with running_app(st.url, projector=False, settings=make_settings(partitions=PARTITIONS)) as client:
                traffic = Traffic(client, rng)
                await traffic.open_wallets(customers)
                lanes = [asyncio.create_task(traffic.write()) for _ in range(2)]
                lanes += [asyncio.create_task(traffic.read()) for _ in range(3)]
                try:
                    await asyncio.sleep(before_s)  # traffic runs before the replay starts
                    code, out = await run_tally(tally_env(st.url, PARTITIONS), "replay", timeout=120)
                    assert code == 0, out
                    await asyncio.sleep(after_s)  # and goes on after the switch
                finally:
                    traffic.stopping = True
                    await asyncio.wait(lanes, timeout=15)
                for lane in lanes:
                    assert lane.done() and lane.exception() is None, lane
            generation = await live_generation(st.redis, st.keys)
            behind = await wait_until_caught_up(st.store, st.projection, timeout=STALL_S)
            alive = procs.exited_on_their_own() == {}
            if behind or not alive:  # restart the projectors, as an operator would, to audit what is there
                for name in procs.running:
                    procs.kill(name)
                await procs.wait_joined(st.redis, procs.start())
            behind_after_restart = await wait_until_caught_up(st.store, st.projection, timeout=120)
            await at_live_generation(st.store, st.projection)
            acked = {event_id: AccountRef(TENANT.tenant_id, TENANT.environment_id, customer)
                     for event_id, customer in traffic.usage.items()}
            result = await audit(st.store, st.projection, acked)
            misses = await ledger_misses(st.store, traffic)
        finally:
            procs.close()
    row = Row("7 replay + switch under writes and reads", faults=1, note=(
        f"replay: {out.strip().splitlines()[-1] if out.strip() else ''}; live generation {generation}; reads "
        f"{dict(traffic.reads)}; non-200: {len(traffic.failures)}; real-time reads going back: "
        f"{traffic.backwards['real-time']}, cached reads going back: {traffic.backwards['cached']}; top-ups "
        f"acknowledged {len(traffic.top_ups)}, usage {len(traffic.usage)}; projections behind {STALL_S:.0f} s after "
        f"the switch with the projectors that followed it (alive: {alive}): {len(behind)}, after restarting them: "
        f"{len(behind_after_restart)}"))
    result.fill(row)
    row.lost += misses + len(behind_after_restart)
    row.problems += traffic.failures[:3] + ([] if generation == 2 else [f"live generation is {generation}"])
    if traffic.backwards["real-time"]:
        row.problems.append(f"real-time balance went down {traffic.backwards['real-time']} times")
    if behind and alive:  # on some runs only: reproduced deterministically by switch_mid_batch (7b)
        row.seen_bugs.append("partitions stalled after the switch: a worker switched mid-batch died (see 7b)")
    row.seconds = time.monotonic() - started
    return row
