"""Scenario 10a/10b: a Redis Cluster primary SIGKILLed under load, its replica taking over, with and without
TALLY_WAIT_REPLICAS=1.

A 3-primary cluster with one replica each (cluster-node-timeout NODE_TIMEOUT_MS), a real `tally api` and a real
`tally projector` on it (subprocesses). Producers post usage over HTTP (single and bulk, each event with its own
event_id); a 202 is an acknowledgement, recorded with the instant it arrived. A primary picked at random is SIGKILLed;
the row polls until its replica has been promoted (the failover time is reported), starts the killed node again (it
rejoins as a replica, so WAIT can be met again) and waits until every primary has its replica in sync. Requests that
failed are retried afterwards with the same event ids, as a producer would.

With WAIT every acknowledged event must be there after the failover. Without it Redis replication is asynchronous:
an event acknowledged by a primary that died before shipping it to its replica is gone. That loss is measured and
reported (it is often 0: on loopback the replica is a few microseconds behind); only events acknowledged more than
WINDOW_S before a kill count as lost. Either way: 0 duplicated, 0 drift (a fold from zero of every account, and
`tally verify` run as an operator would).
"""

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from domain.identity import AccountRef
from tests.fault.scenarios.cluster import ClusterStage, cluster_stage
from tests.fault.scenarios.restart import UsageProducer, age_at_kill, in_doubt
from tests.support.dev_server import ENVIRONMENT, KEY, TENANT, api_server
from tests.support.faults import Audit, Row, audit, wait_until_caught_up
from tests.support.projectors import ProjectorProcesses

PARTITIONS = 16
NODE_TIMEOUT_MS = 1000
FAILOVER_S = 60.0  # polled; a failover takes about two node timeouts
WINDOW_S = 1.0  # without WAIT: what a dying primary may not have shipped yet (replication lag, plus slack)
STALL_S = 30.0  # the projector must be folding again this soon after the last failover
CUSTOMERS = [f"cust_{n:02d}" for n in range(12)]


async def create_wallets(client: httpx.AsyncClient) -> None:
    for customer in CUSTOMERS:
        answer = await client.post("/v1/wallets", json={"customer_id": customer, "currency": "USD",
                                                        "initial_credits_to_load": "1000"})
        assert answer.status_code == 200, answer.text


async def until(probe: Callable[[], bool], timeout: float, failure: str) -> float:
    """Poll a blocking probe (off the event loop, so the load goes on) until it holds; returns the seconds taken."""
    started = time.monotonic()
    while not await asyncio.to_thread(probe):
        assert time.monotonic() - started < timeout, failure
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def chaos(st: ClusterStage, producer: UsageProducer, kills: int, load_s: float,
                rng: random.Random) -> tuple[list[float], list[float]]:
    """Kill a primary `kills` times while the producers post; returns the kill instants and failover durations."""
    lanes = [asyncio.create_task(producer.lane()) for _ in range(4)]
    kill_times: list[float] = []
    failovers: list[float] = []
    try:
        for _ in range(kills):
            await asyncio.sleep(load_s)  # the load runs meanwhile: this is the interval between faults
            victim = rng.choice(await asyncio.to_thread(st.cluster.primaries))
            kill_times.append(time.monotonic())
            st.cluster.kill(victim)
            failovers.append(await until(st.cluster.failed_over, FAILOVER_S, f"no replica took {victim}'s slots"))
            st.cluster.restart(victim)
            await asyncio.to_thread(st.cluster.wait_ready, FAILOVER_S)  # polls: the restarted node in sync again
        await asyncio.sleep(load_s)
    finally:
        producer.stopping = True
        await asyncio.wait(lanes, timeout=30)
    for lane in lanes:
        assert lane.done() and lane.exception() is None, lane
    return kill_times, failovers


async def run(tmp_path: Path, wait: bool, kills: int, load_s: float, seed: int) -> Row:
    started = time.monotonic()
    rng = random.Random(seed)
    async with cluster_stage(tmp_path, PARTITIONS, replicas=1, node_timeout_ms=NODE_TIMEOUT_MS) as st:
        procs = ProjectorProcesses(st.url, PARTITIONS, st.logs, lease_ttl_ms="1000", block_ms="20",
                                   batch_size="200", log_level="WARNING")
        settings = {"partitions": str(PARTITIONS), "wait_replicas": "1" if wait else "0", "wait_timeout_ms": "2000",
                    "request_log": "false", "log_level": "WARNING"}
        try:
            with api_server(st.url, st.logs, **settings) as server:
                await procs.wait_joined(st.redis, procs.start(cold=True))
                async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": KEY}, timeout=30) as client:
                    await create_wallets(client)
                    producer = UsageProducer(client, rng, CUSTOMERS)
                    kill_times, failovers = await chaos(st, producer, kills, load_s, rng)
                    doubtful = await in_doubt(st.store, producer)
                    await producer.retry_failed(timeout=60)
            stalled = await wait_until_caught_up(st.store, st.projection, timeout=STALL_S)
            exited = procs.exited_on_their_own()
            acked = {event_id: AccountRef(TENANT, ENVIRONMENT, customer)
                     for event_id, (customer, _) in producer.acked.items()}
            result = await audit(st.store, st.projection, acked)
            verified = await st.verify()
        finally:
            procs.close()
    row = Row(f"10{'a' if wait else 'b'} cluster primary SIGKILL + failover, "
              f"{'TALLY_WAIT_REPLICAS=1' if wait else 'no WAIT'}", faults=kills, note=(
                  f"acknowledged {len(producer.acked)}, requests {dict(producer.stats)}; failover (replica promoted) "
                  f"in {', '.join(f'{s:.1f}' for s in failovers)} s with cluster-node-timeout {NODE_TIMEOUT_MS} ms; "
                  f"failed requests whose events were appended anyway: {doubtful}; tally verify: {verified[1]}"))
    row.problems += [f"projector behind {STALL_S:.0f} s after the failover: {stalled[:2]}"] if stalled else []
    row.problems += [f"projector exited: {why[-300:]}" for why in exited.values()]
    row.problems += [f"tally verify exited {verified[0]}"] if verified[0] else []
    result.fill(row)
    if not wait:
        measured_loss(row, result, producer, kill_times)
    row.seconds = time.monotonic() - started
    return row


def measured_loss(row: Row, result: Audit, producer: UsageProducer, kill_times: list[float]) -> None:
    """Without WAIT, an event acknowledged within WINDOW_S of a kill may be lost (asynchronous replication): not
    counted as lost, but reported, with how long before the kill it was acknowledged."""
    ages = sorted(age_at_kill(producer.acked[event_id][1], kill_times) for event_id in result.missing)
    within = [age for age in ages if age <= WINDOW_S]
    exposed = sum(1 for _, acked_at in producer.acked.values() if age_at_kill(acked_at, kill_times) <= 0.1)
    row.lost -= len(within)
    row.note += (f"; LOSS MEASURED: {len(ages)} of {len(producer.acked)} acknowledged events lost "
                 f"({exposed} were acknowledged in the last 100 ms before a kill)")
    if ages:
        row.note += (f", {len(within)} of them acknowledged within {WINDOW_S:.0f} s of a kill (the newest "
                     f"{ages[0] * 1000:.1f} ms, the oldest {ages[-1] * 1000:.1f} ms before it)")
