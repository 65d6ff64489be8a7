"""A poison account on a real Redis: only it is quarantined, its partition neighbours go on folding; it is visible
(dlq, metric, verify, replay), reads fall back to its snapshot, commands are refused, and drop / retry release it."""

import asyncio
from typing import Any

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from store.positions import is_after
from store.quarantine import Quarantines
from tests.integration.test_verify_command import tally
from tests.support.harness import PARTITIONS, running_app, wait_folded
from tests.support.poison import GARBAGE, append_event, append_raw, grant, same_partition, unfoldable_grant, until

KEYS = Keys(PARTITIONS)
GRANT = {"transaction_reason": "PURCHASED_CREDIT_DIRECT"}


async def wallet_of(client: Any, ref: AccountRef, credits: str) -> str:
    response = await client.post("/v1/wallets", json={"customer_id": ref.customer_id, "currency": "USD",
                                                       "initial_credits_to_load": credits})
    assert response.status_code == 200, response.text
    wallet_id: str = response.json()["id"]
    return wallet_id


async def cached_credits(client: Any, wallet_id: str) -> str:
    body = (await client.get(f"/v1/wallets/{wallet_id}/balance/real-time?from_cache=true")).json()
    return str(body.get("credit_balance"))


def quarantined_gauge(ref: AccountRef) -> float | None:
    return REGISTRY.get_sample_value("tally_projector_quarantined_accounts", {"partition": str(KEYS.partition_of(ref))})


async def test_a_poison_account_is_quarantined_alone_shown_refused_and_released_by_drop(
    clean_redis: str, aredis: Redis
) -> None:
    store = EventStore(aredis, KEYS, 3600)
    poisoned, *neighbours = same_partition(KEYS, 4)
    quarantines = Quarantines(aredis, KEYS)
    async with running_app(clean_redis) as client:
        wallets = {ref: await wallet_of(client, ref, "10") for ref in [poisoned, *neighbours]}
        await wait_folded(aredis, poisoned)
        bad, raw = await append_event(store, poisoned, unfoldable_grant(wallets[poisoned]))
        for n, ref in enumerate(neighbours):
            response = await client.post(f"/v1/wallets/{wallets[ref]}/top-up", json={**GRANT, "credits_to_add": n + 1})
            assert response.status_code == 200, response.text
        await until(lambda: _is_quarantined(quarantines, poisoned), "the poison account quarantined")
        for n, ref in enumerate(neighbours):
            expected = str(11 + n)
            await until(lambda r=ref, e=expected: _has(client, wallets[r], e), f"{ref.customer_id} caught up")
        refused = await client.post(f"/v1/wallets/{wallets[poisoned]}/top-up", json={**GRANT, "credits_to_add": 1})
        read = (await client.get(f"/v1/wallets/{wallets[poisoned]}/balance/real-time")).json()
        await until(lambda: _gauge_is(poisoned, 1.0), "the quarantined-accounts gauge counts it")
        listed, shown = await run(clean_redis, "dlq", "list"), await _dlq(clean_redis, "show", poisoned)
        verified, dry = await run(clean_redis, "verify"), await run(clean_redis, "replay", "--dry-run")
        retried = await _dlq(clean_redis, "retry", poisoned)
        dropped = await _dlq(clean_redis, "drop", poisoned, "--yes")
        await wait_folded(aredis, poisoned)
        after = (await client.get(f"/v1/wallets/{wallets[poisoned]}/balance/real-time?from_cache=true")).json()
        again = await client.post(f"/v1/wallets/{wallets[poisoned]}/top-up", json={**GRANT, "credits_to_add": 2})
        await until(lambda: _gauge_is(poisoned, 0.0), "the gauge back to 0 after the drop")
        verified_after = await run(clean_redis, "verify")
    letter = await quarantines.get(poisoned)
    assert refused.status_code == 409 and refused.json()["code"] == "account_quarantined", refused.text
    assert "retry or drop" in refused.json()["message"]
    assert (read["credit_balance"], read["is_cached_fallback"]) == ("10", True), read
    assert listed.returncode == 0 and poisoned.customer_id in listed.stdout and "kind=fold" in listed.stdout
    assert "1 quarantined account(s)" in listed.stdout, listed.stdout
    raw_shown = "e = b'" in shown.stdout or 'e = b"' in shown.stdout  # repr picks its quotes by the bytes' content
    assert shown.returncode == 0 and f"log_position={bad}" in shown.stdout and raw_shown, shown.stdout
    assert verified.returncode == 1 and f"PROBLEM tenant_a/env_a/{poisoned.customer_id}" in verified.stdout
    assert "problems=1" in verified.stdout, verified.stdout
    assert dry.returncode == 1 and f"CANNOT FOLD tenant_a/env_a/{poisoned.customer_id} at {bad}" in dry.stdout
    assert "Traceback" not in dry.stderr, dry.stderr
    assert retried.returncode == 1 and "still failing" in retried.stdout, retried.stdout  # nothing was fixed yet
    assert dropped.returncode == 0 and "released" in dropped.stdout, dropped.stdout + dropped.stderr
    assert letter is None and after["is_cached_fallback"] is True and after["credit_balance"] == "10"
    assert again.status_code == 200, again.text
    assert not await aredis.xrange(KEYS.log(poisoned), min=bad, max=bad), "the dropped entry is still in the stream"
    records: Any = await aredis.xrange(KEYS.operations(KEYS.partition_of(poisoned)))
    (_, record), = records
    assert record[b"action"] == b"account_entry_dropped" and record[b"position"] == bad.encode()
    assert record[b"operator"] and record[b"removed_from_log"] == b"1" and record[b"raw.e"] == raw
    assert verified_after.returncode == 0 and "problems=0" in verified_after.stdout, verified_after.stdout


async def test_an_undecodable_entry_quarantines_its_account_and_later_entries_wait_for_the_drop(
    clean_redis: str, aredis: Redis
) -> None:
    store = EventStore(aredis, KEYS, 3600)
    poisoned, neighbour = same_partition(KEYS, 2, prefix="cust_raw")
    async with running_app(clean_redis) as client:
        wallets = {ref: await wallet_of(client, ref, "3") for ref in [poisoned, neighbour]}
        await wait_folded(aredis, poisoned)
        bad = await append_raw(store, poisoned, GARBAGE)
        refused = await client.post(f"/v1/wallets/{wallets[poisoned]}/top-up", json={**GRANT, "credits_to_add": 4})
        later, _ = await append_event(store, poisoned, grant(wallets[poisoned], "4"))
        await until(lambda: _is_quarantined(Quarantines(aredis, KEYS), poisoned), "quarantined")
        await client.post(f"/v1/wallets/{wallets[neighbour]}/top-up", json={**GRANT, "credits_to_add": 4})
        await until(lambda: _has(client, wallets[neighbour], "7"), "the neighbour caught up")
        snapshot_before: Any = await aredis.hget(KEYS.snapshot(poisoned), "p")
        dropped = await _dlq(clean_redis, "drop", poisoned, "--yes")
        await wait_folded(aredis, poisoned)
        released = (await client.get(f"/v1/wallets/{wallets[poisoned]}/balance/real-time?from_cache=true")).json()
    assert refused.status_code == 409, refused.text  # the exact read cannot fold the tail: refused, nothing appended
    assert is_after(bad, snapshot_before.decode()), "the snapshot moved past the entry it cannot fold"
    assert is_after(later, bad)
    assert dropped.returncode == 0 and "released" in dropped.stdout, dropped.stdout + dropped.stderr
    records: Any = await aredis.xrange(KEYS.operations(KEYS.partition_of(poisoned)))
    assert records[-1][1][b"raw.e"] == GARBAGE
    assert released["credit_balance"] == "7", released  # the later entry waited in the stream, then folded


async def run(url: str, *args: str) -> Any:
    """A `tally` command in a subprocess, waited for off the event loop (the in-process projector goes on)."""
    return await asyncio.to_thread(tally, url, *args)


async def _dlq(url: str, verb: str, ref: AccountRef, *extra: str) -> Any:
    return await run(url, "dlq", verb, "--customer", ref.customer_id, "--tenant", ref.tenant_id,
                     "--environment", ref.environment_id, *extra)


async def _is_quarantined(quarantines: Quarantines, ref: AccountRef) -> bool:
    return await quarantines.get(ref) is not None


async def _has(client: Any, wallet_id: str, credits: str) -> bool:
    return await cached_credits(client, wallet_id) == credits


async def _gauge_is(ref: AccountRef, value: float) -> bool:
    return quarantined_gauge(ref) == value
