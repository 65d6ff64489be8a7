"""Scenario 10c: a `tally projector` SIGKILLed on a Redis Cluster while the partitions it holds are spread over three
primaries; the projector running beside it takes them all over.

Two real projector processes share 16 partitions whose keys live on three nodes; a writer appends (top-ups, debits,
bulk, retries) meanwhile. Each round picks the projector whose leases cover the most nodes, waits until it has
committed on each of them, SIGKILLs it at a random instant, and polls until the survivor holds every lease and has
committed on every node; a replacement then joins for the next round. After each kill, one MULTI per partition (one
slot) counts half-applied commits. In the end: every acknowledged append once in its stream, every entry applied
once, no drift (a fold from zero, and `tally verify`), no checkpoint or snapshot position gone back.
"""

import asyncio
import random
import time
from pathlib import Path

from store.positions import ORIGIN, text
from tests.fault.scenarios.cluster import ClusterStage, cluster_stage
from tests.fault.scenarios.common import StoppableWriter, refs_in
from tests.support.crash_writer import Monitor, wait_settled
from tests.support.faults import Row, audit
from tests.support.faults_processes import torn_commits
from tests.support.projectors import ProjectorProcesses

PARTITIONS = 16
LEASE_TTL_MS = 1000
TAKEOVER_S = 60.0  # polled; the survivor takes a dead member's partitions once its membership lapses (2 leases)
RESHUFFLES = 10  # stop-and-start rounds to get a holder on every node (holder_on_every_node)


async def leases(st: ClusterStage) -> dict[int, str]:
    """Partition -> the name of the projector holding its lease (holders are NAME#token)."""
    holders = {p: await st.redis.get(st.keys.lease(p)) for p in range(PARTITIONS)}
    return {p: text(h).split("#")[0] for p, h in holders.items() if h is not None}


async def checkpoints(st: ClusterStage) -> dict[int, str]:
    return {p: text(await st.redis.get(st.keys.checkpoint(p)) or ORIGIN) for p in range(PARTITIONS)}


async def committed_on_every_node(st: ClusterStage, holder: str, nodes: dict[int, str], timeout: float) -> None:
    """Poll until, on each node where `holder` has leases, one of those partitions' checkpoints moved on."""
    loop = asyncio.get_running_loop()
    deadline, before = loop.time() + timeout, await checkpoints(st)
    while True:
        held, now = await leases(st), await checkpoints(st)
        mine = {nodes[p] for p, name in held.items() if name == holder}
        moved = {nodes[p] for p, name in held.items() if name == holder and now[p] != before[p]}
        if mine and moved == mine:
            return
        assert loop.time() < deadline, f"{holder} committed on {sorted(moved)} of {sorted(mine)} only"
        await asyncio.sleep(0.02)


async def hold_all(st: ClusterStage, holder: str, timeout: float) -> float:
    """Poll until `holder` holds every partition's lease; returns the seconds it took."""
    started = time.monotonic()
    while set((await leases(st)).values()) != {holder} or len(await leases(st)) < PARTITIONS:
        assert time.monotonic() - started < timeout, f"{holder} holds {await leases(st)}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def widest_holder(st: ClusterStage, running: list[str], nodes: dict[int, str], timeout: float) -> str:
    """Poll until the leases have settled (every partition held, each running projector holding its fair share:
    a projector that just joined is still taking its share meanwhile, and the one that gives it up may be left on
    fewer nodes), then the projector whose leases cover the most nodes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        held = await leases(st)
        counts = {name: sum(1 for n in held.values() if n == name) for name in running}
        if len(held) == PARTITIONS and all(c == PARTITIONS // len(running) for c in counts.values()):
            return max(running, key=lambda name: len({nodes[p] for p, n in held.items() if n == name}))
        assert loop.time() < deadline, f"the leases did not settle: {held}"
        await asyncio.sleep(0.02)


async def holder_on_every_node(st: ClusterStage, procs: ProjectorProcesses, nodes: dict[int, str]) -> str:
    """The widest holder once its leases cover every node. Which partitions each of the two projectors ends up
    with is theirs to settle, and both can end up on two nodes (with 4, 6 and 6 partitions per node, 6 + 2 and
    4 + 4): then the other one is stopped (its leases go back to the widest, now on every node) and a new one
    started, which takes its share anew, until a holder covers every node (a bounded number of reshuffles)."""
    every = len(set(nodes.values()))
    for _ in range(RESHUFFLES):
        victim = await widest_holder(st, list(procs.running), nodes, timeout=30)
        if len({nodes[p] for p, n in (await leases(st)).items() if n == victim}) == every:
            return victim
        procs.stop(next(name for name in procs.running if name != victim))
        await hold_all(st, victim, TAKEOVER_S)
        await procs.wait_joined(st.redis, procs.start(cold=True))
    return await widest_holder(st, list(procs.running), nodes, timeout=30)  # the row reports its spread


async def rounds(st: ClusterStage, procs: ProjectorProcesses, writer: StoppableWriter, kills: int,
                 rng: random.Random) -> tuple[list[float], list[int], list[str]]:
    """The kills; returns takeover times, nodes each victim's leases covered, half-applied commits seen."""
    nodes = st.nodes()
    takeovers: list[float] = []
    spread: list[int] = []
    torn: list[str] = []
    for name in (procs.start(cold=True), procs.start(cold=True)):
        await procs.wait_joined(st.redis, name)
    for _ in range(kills):
        assert procs.exited_on_their_own() == {}
        victim = await holder_on_every_node(st, procs, nodes)
        survivor = next(name for name in procs.running if name != victim)
        await committed_on_every_node(st, victim, nodes, timeout=30)
        spread.append(len({nodes[p] for p, n in (await leases(st)).items() if n == victim}))
        await asyncio.sleep(rng.uniform(0, 0.3))  # a random instant of its batch cycle: the kill is the fault
        procs.kill(victim)
        torn.extend(await torn_commits(st.redis, st.keys, writer.refs))
        takeovers.append(await hold_all(st, survivor, TAKEOVER_S))
        await committed_on_every_node(st, survivor, nodes, timeout=30)
        await procs.wait_joined(st.redis, procs.start(cold=True))
    return takeovers, spread, torn


async def run(tmp_path: Path, kills: int, per_partition: int, seed: int) -> Row:
    started = time.monotonic()
    rng = random.Random(seed)
    async with cluster_stage(tmp_path, PARTITIONS) as st:
        refs = [ref for p in range(PARTITIONS) for ref in refs_in(st.keys, p, per_partition)]
        writer = StoppableWriter(st.store, rng, refs)
        procs = ProjectorProcesses(st.url, PARTITIONS, st.logs, lease_ttl_ms=str(LEASE_TTL_MS), block_ms="20",
                                   batch_size="64", clock_interval_ms="200", log_level="WARNING",
                                   trim_every_batches="0")  # the torn-commit check reads whole feeds
        monitor, stop_monitor = Monitor(st.redis, st.keys, refs), asyncio.Event()
        await writer.create_wallets()
        writing = asyncio.create_task(writer.run_lanes(seconds=600))
        sampling = asyncio.create_task(monitor.run(stop_monitor))
        try:
            takeovers, spread, torn = await rounds(st, procs, writer, kills, rng)
            await writer.stop(writing)
            await wait_settled(st.store, st.projection, writer, timeout=120)  # polled: the bound marks a stall
            stop_monitor.set()
            await sampling
            torn.extend(await torn_commits(st.redis, st.keys, refs))
            result = await audit(st.store, st.projection, writer.acked_refs())
            verified = await st.verify()
            exited = procs.exited_on_their_own()
            layout = sorted(count_nodes(st.nodes()))
        finally:
            writer.stopping = True
            stop_monitor.set()
            await asyncio.wait([sampling, writing], timeout=15)
            procs.close()
    row = Row("10c cluster: projector SIGKILL, partitions on 3 nodes", faults=kills, note=(
        f"partitions per node {layout}; the victims' leases covered {spread} nodes; "
        f"the survivor held every lease {', '.join(f'{s:.1f}' for s in takeovers)} s after each kill; "
        f"half-applied commits seen after the kills: {len(torn)}; positions gone back ({monitor.samples} samples): "
        f"{len(monitor.backwards)}; acknowledged {len(writer.acked)}; tally verify: {verified[1]}"))
    result.fill(row)
    row.drift += len(torn)
    row.problems += [f"position went back: {b}" for b in monitor.backwards[:3]]
    row.problems += [f"projector exited: {why[-300:]}" for why in exited.values()]
    row.problems += [f"tally verify exited {verified[0]}"] if verified[0] else []
    row.problems += [f"a victim's partitions were on {n} nodes, not 3" for n in spread if n < 3]
    row.seconds = time.monotonic() - started
    return row


def count_nodes(nodes: dict[int, str]) -> list[int]:
    counts: dict[str, int] = {}
    for node in nodes.values():
        counts[node] = counts.get(node, 0) + 1
    return list(counts.values())
