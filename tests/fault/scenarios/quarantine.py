"""Scenario 9: a poison account in a partition, under a real projector (with --metrics-port) while the writer writes.

Only that account is quarantined: its partition is not halted, its checkpoint goes past the entry, and its neighbours
(two accounts on the same partition) and the other partitions keep folding. It is visible (`tally dlq list`, the
tally_projector_quarantined_accounts gauge, `tally verify` exit 1), commands on it are refused while bulk appends
for it wait in its stream; `tally dlq retry` then `tally dlq drop --yes` release it, the drop recorded on the
operations stream; at the end nothing is lost, duplicated or drifted, the poisoned account included.

Variants: "unfoldable", an encoded event whose fold raises (a NaN grant) appended through the store into both
streams: retry still fails, drop removes it from the customer stream. "feed-garbage", an undecodable payload naming
a real account written to the feed only (as scenario 6 wrote it): retry refolds the customer stream and releases
it. "feed-garbage-mid-batch": the same, landing in the middle of a batch the stopped projector had not read.
"""

import asyncio
import contextlib
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from domain.codec import encode_ref
from domain.commands import AnyCommand
from domain.errors import AccountQuarantined
from domain.identity import AccountRef
from store.eventstore import Dedup
from store.positions import is_after, text
from store.quarantine import Quarantines
from tests.fault.scenarios.common import Stage, StoppableWriter, refs_in, stage
from tests.fault.scenarios.poison import BAD, GARBAGE, PARTITIONS, STALL_S, MetricsProjector, poll
from tests.support.catchup import lag
from tests.support.faults import Row, audit, wait_until_caught_up
from tests.support.faults_processes import run_tally, tally_env
from tests.support.poison import append_event, unfoldable_grant


@dataclass
class QuarantineWriter(StoppableWriter):
    """Commands on the quarantined account are refused (409 account_quarantined through the API): counted."""

    async def execute(self, ref: AccountRef, command: AnyCommand, ids: list[str], dedup: Dedup | None) -> None:
        try:
            await super().execute(ref, command, ids, dedup)
        except AccountQuarantined:
            self.stats["refused: quarantined"] += 1


async def gauge(projector: MetricsProjector) -> float | None:
    try:
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"http://127.0.0.1:{projector.port}/metrics", timeout=2)).text
    except httpx.HTTPError:
        return None
    wanted = f'tally_projector_quarantined_accounts{{partition="{BAD}"}} '
    return next((float(line.split()[-1]) for line in body.splitlines() if line.startswith(wanted)), None)


async def inject(st: Stage, variant: str, poisoned: AccountRef) -> tuple[str, str]:
    """(feed position, log position) of the poison entry."""
    if variant == "unfoldable":
        log_position, _ = await append_event(st.store, poisoned, unfoldable_grant(f"w_{poisoned.customer_id}"))
        found: Any = await st.redis.xrevrange(st.keys.feed(BAD), count=20)
        feed = next(text(i) for i, f in found if f.get(b"l") == log_position.encode())
        return feed, log_position
    later = f"{int(time.time() * 1000) + 60_000}-0"  # after all the account has folded: never taken as applied
    fields = {"c": encode_ref(poisoned), "l": later, "e": GARBAGE}
    return text(await st.redis.xadd(st.keys.feed(BAD), fields)), later


async def neighbours_caught_up(st: Stage, poisoned: AccountRef) -> bool:
    return not [b for b in await lag(st.store, st.projection) if poisoned.customer_id not in b]


async def operator(st: Stage, facts: dict[str, Any], poisoned: AccountRef, log_position: str) -> None:
    env = tally_env(st.url, PARTITIONS)
    who = ("--customer", poisoned.customer_id, "--tenant", poisoned.tenant_id, "--environment", poisoned.environment_id)
    code, out = await run_tally(env, "dlq", "list")
    facts["dlq list shows it"] = code == 0 and poisoned.customer_id in out and "0 halted partition(s)" in out
    facts["verify"] = (await run_tally(env, "verify"))[0]
    code, out = await run_tally(env, "dlq", "retry", *who)
    facts["dlq retry"] = out.strip().splitlines()[0].split(": ", 1)[-1] if out.strip() else f"exit {code}"
    if await Quarantines(st.redis, st.keys).get(poisoned) is not None:
        code, out = await run_tally(env, "dlq", "drop", *who, "--yes")
        facts["dlq drop"] = out.strip().splitlines()[0].split(": ", 1)[-1] if out.strip() else f"exit {code}"
        records: Any = await st.redis.xrange(st.keys.operations(BAD))
        facts["operations records"] = [(text(r[b"action"]), text(r[b"position"]) == log_position) for _, r in records]


async def run(tmp_path: Path, variant: str, burst: int, seed: int) -> Row:
    started = time.monotonic()
    rng = random.Random(seed)
    facts: dict[str, Any] = {}
    async with stage(tmp_path, PARTITIONS) as st:
        poisoned, *neighbours = refs_in(st.keys, BAD, 3)
        accounts = [poisoned, *neighbours, *(r for p in range(PARTITIONS) if p != BAD for r in refs_in(st.keys, p, 2))]
        writer = QuarantineWriter(st.store, rng, accounts)
        projector = MetricsProjector(st)
        writing: asyncio.Task[None] | None = None
        try:
            await writer.create_wallets()
            assert not await wait_until_caught_up(st.store, st.projection, timeout=30), "the projector never started"
            if variant.endswith("mid-batch"):
                projector.signal(signal.SIGSTOP)
                for _ in range(burst):
                    await writer.top_up(rng.choice([poisoned, *neighbours]))
            feed_position, log_position = await inject(st, variant, poisoned)
            projector.signal(signal.SIGCONT)
            writing = asyncio.create_task(writer.run_lanes(seconds=60))
            quarantines = Quarantines(st.redis, st.keys)
            facts["quarantined"] = await poll(lambda: _quarantined(quarantines, poisoned), timeout=STALL_S)
            facts["partition halted"] = await poll(lambda: _halted(st), timeout=0.3)
            facts["gauge while quarantined"] = await _gauge_reaches(projector, 1.0)
            facts["partition went past it"] = await poll(lambda: _past(st, feed_position), timeout=STALL_S)
            await writer.stop(writing)
            facts["neighbours folded meanwhile"] = await poll(lambda: neighbours_caught_up(st, poisoned),
                                                              timeout=STALL_S)
            await operator(st, facts, poisoned, log_position)
            behind = await wait_until_caught_up(st.store, st.projection, timeout=60)
            facts["still quarantined"] = await quarantines.get(poisoned) is not None
            facts["gauge at the end"] = await _gauge_reaches(projector, 0.0)
            facts["process alive"] = projector.process.poll() is None
            facts["commands refused"] = writer.stats["refused: quarantined"] > 0
            result = await audit(st.store, st.projection, writer.acked_refs())
        finally:
            writer.stopping = True
            if writing is not None:
                await asyncio.wait([writing], timeout=15)
            with contextlib.suppress(Exception):
                projector.close()
    return verdict(variant, facts, behind, result, started)


async def _quarantined(quarantines: Quarantines, ref: AccountRef) -> bool:
    return await quarantines.get(ref) is not None


async def _halted(st: Stage) -> bool:
    return bool(await st.redis.exists(st.keys.halted(BAD)))


async def _past(st: Stage, feed_position: str) -> bool:
    return not is_after(feed_position, await st.projection.checkpoint(BAD))


async def _gauge_reaches(projector: MetricsProjector, value: float) -> float | None:
    """The gauge once it reads `value` (it is refreshed every clock interval), or what it reads after STALL_S."""
    await poll(lambda: _gauge_is(projector, value), timeout=STALL_S)
    return await gauge(projector)


async def _gauge_is(projector: MetricsProjector, value: float) -> bool:
    return await gauge(projector) == value


def verdict(variant: str, facts: dict[str, Any], behind: list[str], result: Any, started: float) -> Row:
    row = Row(f"9 poison account in a partition ({variant})", faults=1,
              note="; ".join(f"{k}: {v}" for k, v in facts.items()))
    result.fill(row)
    row.note += f"; behind at the end: {len(behind)}"
    expected: dict[str, Any] = {
        "quarantined": True, "partition halted": False, "gauge while quarantined": 1.0, "partition went past it": True,
        "neighbours folded meanwhile": True, "dlq list shows it": True, "verify": 1, "still quarantined": False,
        "gauge at the end": 0.0, "process alive": True,
    }
    released = "dlq drop" if variant == "unfoldable" else "dlq retry"
    if variant == "unfoldable":  # still in the customer stream: retry fails again, drop removes it
        expected.update({"dlq retry": "still failing", "operations records": [("account_entry_dropped", True)],
                         "commands refused": True})
    row.problems = [f"{k}: {facts.get(k)!r}, wanted {v!r}" for k, v in expected.items() if facts.get(k) != v]
    if not str(facts.get(released, "")).startswith("released"):
        row.problems.append(f"{released}: {facts.get(released)!r}, wanted released")
    if behind:
        row.problems.append(f"behind at the end: {behind[:3]}")
    row.seconds = time.monotonic() - started
    return row
