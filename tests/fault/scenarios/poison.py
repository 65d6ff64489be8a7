"""Scenario 6: a feed entry naming no readable account (no c/l/e fields) injected into a partition feed while a real
projector (with --metrics-port) runs and the writer writes. Its partition must halt (DeadLetters.halted,
tally_projector_halted_partitions), the others go on, nothing after it is lost; `tally dlq drop P --yes` records the
drop on the operations stream and resumes the partition, and everything but the bad entry is folded.

An undecodable entry that names its account no longer halts the partition: it quarantines that account alone
(scenario 9, tests/fault/scenarios/quarantine.py, injects the payload variants this scenario used to).
"""

import asyncio
import contextlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from cli.stores import free_port
from store.deadletters import DeadLetters
from store.positions import is_after, text
from tests.fault.scenarios.common import Stage, refs_in, stage
from tests.support.faults import Row, audit, wait_until_caught_up
from tests.support.faults_processes import run_tally, tally_env
from tests.support.projectors import ENTRY

PARTITIONS = 4
STALL_S = 60.0  # polled waits return once their state holds; the bound only marks a stall
BAD = 1  # the partition the bad entry goes to
GARBAGE = b"\xc1 not msgpack"


class MetricsProjector:
    """One `tally projector --metrics-port N` process; killed and reaped by close()."""

    def __init__(self, st: Stage) -> None:
        self.port = free_port()
        self.log = st.logs / "projector-metrics.log"
        env = tally_env(st.url, PARTITIONS, lease_ttl_ms="2000", block_ms="20", batch_size="500",
                        log_level="WARNING")
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-c", ENTRY, "projector", "--holder", "solo",
                                             "--metrics-port", str(self.port)], env=env, stdout=out,
                                            stderr=subprocess.STDOUT)

    async def halted_gauge(self) -> float | None:
        try:
            async with httpx.AsyncClient() as client:
                text_ = (await client.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2)).text
        except httpx.HTTPError:
            return None
        for line in text_.splitlines():
            if line.startswith("tally_projector_halted_partitions "):
                return float(line.split()[1])
        return None

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait(timeout=10)


async def poll(probe: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await probe():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def others_past(st: Stage, bad: str) -> bool:
    """Every other partition has folded entries appended after the bad one."""
    for partition in range(PARTITIONS):
        if partition != BAD and not is_after(await st.projection.checkpoint(partition), bad):
            return False
    return True


async def inject(st: Stage) -> str:
    return text(await st.redis.xadd(st.keys.feed(BAD), {"junk": "1"}))


async def entries_after(st: Stage, position: str) -> int:
    reply: Any = await st.redis.xrange(st.keys.feed(BAD), min=f"({position}", max="+")
    return len(reply)


async def run(tmp_path: Path, variant: str, burst: int, seed: int) -> Row:
    started = time.monotonic()
    rng = random.Random(seed)
    facts: dict[str, Any] = {}
    async with stage(tmp_path, PARTITIONS) as st:
        accounts = [*refs_in(st.keys, BAD, 3)]
        accounts += [ref for p in range(PARTITIONS) if p != BAD for ref in refs_in(st.keys, p, 2)]
        writer = st.writer(rng, accounts)
        projector = MetricsProjector(st)
        writing: asyncio.Task[None] | None = None
        try:
            await writer.create_wallets()
            assert not await wait_until_caught_up(st.store, st.projection, timeout=30), "the projector never started"
            checkpoint = await st.projection.checkpoint(BAD)
            bad = await inject(st)
            unread: Any = await st.redis.xrange(st.keys.feed(BAD), min=f"({checkpoint}", max=f"({bad}")
            facts["before the bad entry, unread"] = len(unread)
            writing = asyncio.create_task(writer.run_lanes(seconds=60))
            dead = DeadLetters(st.redis, st.keys)
            facts["halted"] = await poll(lambda: _halted(dead), timeout=STALL_S)  # a halt takes a batch: well under 1 s
            facts["gauge while halted"] = await projector.halted_gauge()
            facts["others went on"] = await poll(lambda: others_past(st, bad), timeout=STALL_S)
            facts["after the bad entry"] = await entries_after(st, bad)
            if facts["halted"]:
                code, out = await run_tally(tally_env(st.url, PARTITIONS), "dlq", "drop", str(BAD), "--yes")
                facts["dlq drop"] = code
                facts["it said"] = out.strip().splitlines()[-1] if out.strip() else ""
                records: Any = await st.redis.xrange(st.keys.operations(BAD))
                facts["operations records"] = [(text(r[b"action"]), text(r[b"position"]) == bad) for _, r in records]
            await writer.stop(writing)
            behind = await wait_until_caught_up(st.store, st.projection, timeout=60 if facts["halted"] else 1.5)
            facts["gauge at the end"] = await projector.halted_gauge()
            facts["still halted"] = await dead.halted(BAD) is not None
            facts["process alive"] = projector.process.poll() is None
            result = await audit(st.store, st.projection, writer.acked_refs())
        finally:
            writer.stopping = True
            if writing is not None:
                await asyncio.wait([writing], timeout=15)
            with contextlib.suppress(Exception):
                projector.close()
    return verdict(variant, facts, behind, result, started)


async def _halted(dead: DeadLetters) -> bool:
    return await dead.halted(BAD) is not None


def verdict(variant: str, facts: dict[str, Any], behind: list[str], result: Any, started: float) -> Row:
    row = Row(f"6 undecodable feed entry ({variant})", faults=1, note="; ".join(f"{k}: {v}" for k, v in facts.items()))
    result.fill(row)
    row.note += f"; behind at the end: {len(behind)}"
    expected = {"halted": True, "gauge while halted": 1.0, "others went on": True, "dlq drop": 0,
                "operations records": [("entry_dropped", True)], "gauge at the end": 0.0, "still halted": False,
                "process alive": True}
    row.problems = [f"{k}: {facts.get(k)!r}, wanted {v!r}" for k, v in expected.items() if facts.get(k) != v]
    row.seconds = time.monotonic() - started
    return row
