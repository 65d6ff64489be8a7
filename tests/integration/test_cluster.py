"""tally on a real 3-primary Redis Cluster: appends survive script caches flushed under load (nothing lost, nothing
applied twice, the projection equal to a fold from zero), and `tally lag` names the node of each partition of a
store that keeps the partition count it was created with."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from domain.identity import AccountRef
from store.connect import connect
from store.keys import Keys
from tests.support.harness import PARTITIONS, running_app, wait_folded
from tests.support.redis_cluster import RedisCluster

CUSTOMERS = [AccountRef("tenant_a", "env_a", f"cust_{n}") for n in range(4)]
TOP_UPS, BULKS, PER_BULK = 10, 2, 10


@pytest.fixture
def cluster(redis_cluster: RedisCluster) -> Iterator[RedisCluster]:
    redis_cluster.flush()
    yield redis_cluster


def tally(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    environ.update(TALLY_REDIS_URL=url, COLUMNS="200", **env)
    return subprocess.run([sys.executable, "-c", "from cli.main import run; run()", *args], env=environ,
                          capture_output=True, text=True, timeout=120)


def noscript_errors(cluster: RedisCluster) -> int:
    found = 0
    for port in cluster.primaries():
        stats: Any = redis.Redis(port=port).info("errorstats")
        found += int(stats.get("errorstat_NOSCRIPT", {}).get("count", 0))
    return found


async def flush_scripts(cluster: RedisCluster, stop: asyncio.Event) -> int:
    """SCRIPT FLUSH on every primary, over and over, until `stop`; returns how many rounds."""
    clients = [Redis(port=port) for port in cluster.primaries()]
    rounds = 0
    try:
        while not stop.is_set():
            for client in clients:
                await client.script_flush()
            rounds += 1
            await asyncio.sleep(0.002)
    finally:
        for client in clients:
            await client.aclose()
    return rounds


async def customer_load(client: Any, ref: AccountRef) -> None:
    wallet = await client.post("/v1/wallets", json={"customer_id": ref.customer_id, "currency": "USD",
                                                    "initial_credits_to_load": "100"})
    assert wallet.status_code == 200, wallet.text
    wallet_id = wallet.json()["id"]
    for n in range(TOP_UPS):
        top_up = {"credits_to_add": "5", "transaction_reason": "PURCHASED_CREDIT_DIRECT",
                  "idempotency_key": f"{ref.customer_id}-t{n}"}
        for _ in range(2):  # the second is a client's retry
            answer = await client.post(f"/v1/wallets/{wallet_id}/top-up", json=top_up)
            assert answer.status_code == 200, answer.text
    for b in range(BULKS):
        events = [{"event_name": "api_call", "external_customer_id": ref.customer_id, "event_id": f"e-{b}-{n}",
                   "properties": {"tokens": "10"}} for n in range(PER_BULK)]
        for attempt in range(2):  # the whole bulk retried: every event a duplicate the second time
            answer = await client.post("/v1/events/bulk", json={"events": events})
            assert answer.status_code == 202, answer.text
            assert answer.json()["duplicates"] == str(0 if attempt == 0 else PER_BULK), answer.text


async def test_script_flushes_on_every_node_under_load_lose_nothing_and_apply_nothing_twice(
    cluster: RedisCluster,
) -> None:
    before, stop = noscript_errors(cluster), asyncio.Event()
    async with running_app(None, connect=lambda: connect(cluster.url)) as client:
        price = await client.post("/v1/prices", json={
            "event_name": "api_call", "currency": "USD", "aggregation": {"type": "SUM", "field": "tokens"},
            "billing_model": "FLAT_FEE", "amount": "0.5"})
        assert price.status_code == 201, price.text
        flusher = asyncio.create_task(flush_scripts(cluster, stop))
        await asyncio.gather(*(customer_load(client, ref) for ref in CUSTOMERS))
        stop.set()
        assert await flusher > 0
        store = connect(cluster.url)
        try:
            for ref in CUSTOMERS:
                await wait_folded(store, ref)
                logged = await store.xlen(Keys(PARTITIONS).log(ref))
                assert logged == 1 + TOP_UPS + BULKS * PER_BULK, f"{ref.customer_id}: {logged} events"
        finally:
            await store.aclose()
    assert noscript_errors(cluster) > before, "no call met an empty script cache: the test proved nothing"
    verified = tally(cluster.url, "verify", TALLY_PARTITIONS=str(PARTITIONS))
    assert verified.returncode == 0 and "drifts=0" in verified.stdout, verified.stdout + verified.stderr


def test_lag_names_each_partitions_node_and_an_existing_store_keeps_its_partition_count(
    cluster: RedisCluster,
) -> None:
    assert tally(cluster.url, "lag", TALLY_PARTITIONS="16").returncode == 0  # a store created with 16
    shown = tally(cluster.url, "lag")  # TALLY_PARTITIONS unset: the store's own count, not the new default
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if "127.0.0.1:" in line]
    nodes = {f"127.0.0.1:{port}" for port in cluster.primaries()}
    assert len(rows) == 16 and {node for node in nodes if any(node in row for row in rows)} == nodes
