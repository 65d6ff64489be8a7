"""The store's layout is recorded: a fresh store gets this code's, a store of the previous layout (ledgers inside the
snapshots) is refused at start-up by the API, the projector and operator commands, and `tally migrate` rebuilds it."""

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from cli.wiring import run_projector
from domain.codec import decode_ledger_entry, encode_ledger_entry
from domain.events import AnyEvent, CreditsDebited, CreditsGranted, WalletCreated
from domain.fold import fold_logged
from domain.identity import AccountRef
from domain.ledger import ledgers
from domain.state import EMPTY_ACCOUNT
from store.eventstore import EventStore
from store.generation import live_generation
from store.keys import Keys
from store.meta import LAYOUT, LayoutRefused
from tests.support.harness import PARTITIONS, make_settings, running_app

REF = AccountRef("tenant_a", "env_a", "cust_old")
WALLET = "wal_old"
AT = datetime(2026, 1, 5, tzinfo=UTC)


def tally(redis_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TALLY_REDIS_URL": redis_url, "TALLY_PARTITIONS": str(PARTITIONS), **(env or {})}
    return subprocess.run([sys.executable, "-c", "from cli.main import run; run()", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def history() -> list[AnyEvent]:
    created = WalletCreated(id="evt_c", at=AT, wallet_id=WALLET, tenant_id=REF.tenant_id,
                            environment_id=REF.environment_id, customer_id=REF.customer_id, currency="USD",
                            wallet_type="PRE_PAID", conversion_rate=Decimal(1), topup_conversion_rate=Decimal(1))
    grant = CreditsGranted(id="evt_g", at=AT, wallet_id=WALLET, transaction_id="wtx_g", credits=Decimal(100),
                           reason="PURCHASED_CREDIT_DIRECT")
    debits: list[AnyEvent] = [CreditsDebited(id=f"evt_d{n}", at=AT, wallet_id=WALLET, transaction_id=f"wtx_d{n}",
                                             credits=Decimal(n + 1), reason="MANUAL_BALANCE_DEBIT") for n in range(5)]
    return [created, grant, *debits]


async def old_layout_store(redis: Redis) -> None:
    """What the previous layout left: the streams, the metadata without a layout, snapshots with ledgers inside."""
    keys = Keys(PARTITIONS)
    store = EventStore(redis, keys, 3600)
    await store.index_wallet(WALLET, REF)
    appended = await store.append(REF, history())
    account, writes = fold_logged(EMPTY_ACCOUNT, zip(appended.positions, history(), strict=True))
    old: dict[str, Any] = msgspec.to_builtins(account)
    for wallet_id, wallet in old["wallets"].items():
        wallet.pop("entries"), wallet.pop("pending_entries")
        wallet["ledger"] = msgspec.to_builtins(ledgers(writes)[wallet_id])
    await redis.hset(keys.snapshot(REF), mapping={"p": account.position, "s": msgspec.msgpack.encode(old), "t": ""})
    await redis.hset(keys.meta(), "partitions", PARTITIONS)


async def test_a_fresh_store_is_marked_with_this_layout(clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis, projector=False) as client:
        assert (await client.get("/v1/customers/nobody/wallets")).status_code == 200
    assert int(await aredis.hget(Keys(PARTITIONS).meta(), "layout") or 0) == LAYOUT


async def test_a_store_of_the_previous_layout_is_refused_naming_what_to_do(clean_redis: str, aredis: Redis) -> None:
    await old_layout_store(aredis)
    with pytest.raises(LayoutRefused, match="tally migrate"):
        async with running_app(clean_redis, projector=False):
            pass
    with pytest.raises(LayoutRefused, match="tally migrate"):
        await asyncio.wait_for(run_projector(aredis, make_settings(), asyncio.Event(), "refused"), 10)
    for command in (["verify"], ["lag"], ["replay"], ["dlq", "list"]):
        result = tally(clean_redis, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "tally migrate" in result.stderr and "Traceback" not in result.stderr, result.stderr


async def test_tally_migrate_rebuilds_the_previous_layout(clean_redis: str, aredis: Redis) -> None:
    await old_layout_store(aredis)
    await aredis.zadd(Keys(PARTITIONS).projectors(), {"still-running": int(time.time() * 1000)})
    busy = tally(clean_redis, "migrate")
    await aredis.delete(Keys(PARTITIONS).projectors())
    migrated = tally(clean_redis, "migrate")
    again = tally(clean_redis, "migrate")
    verified = tally(clean_redis, "verify")
    assert busy.returncode == 2 and "still-running" in busy.stderr, busy.stdout + busy.stderr
    assert migrated.returncode == 0 and f"migrated to layout {LAYOUT}" in migrated.stdout, migrated.stderr
    assert again.returncode == 0 and "nothing to migrate" in again.stdout, again.stdout + again.stderr
    assert verified.returncode == 0 and "drifts=0" in verified.stdout, verified.stdout + verified.stderr
    async with running_app(clean_redis, projector=False) as client:
        listed = (await client.get(f"/v1/wallets/{WALLET}/transactions")).json()
        balance = (await client.get(f"/v1/wallets/{WALLET}/balance/real-time?from_cache=true")).json()
    assert [i["id"] for i in listed["items"]] == [f"wtx_d{n}" for n in reversed(range(5))] + ["wtx_g"]
    assert balance["credit_balance"] == "85" and balance["is_cached_fallback"] is True


async def test_verify_names_a_tampered_stored_ledger_entry(clean_redis: str, aredis: Redis) -> None:
    keys = Keys(PARTITIONS)
    async with running_app(clean_redis) as client:
        created = await client.post("/v1/wallets", json={"customer_id": REF.customer_id, "currency": "USD",
                                                         "initial_credits_to_load": "10"})
        wallet_id = created.json()["id"]
        await client.post(f"/v1/wallets/{wallet_id}/debit", json={"credits": "3"})
        deadline = time.monotonic() + 10
        while await aredis.hlen(keys.ledger(REF)) < 2:
            assert time.monotonic() < deadline, "the ledger was never stored"
            await asyncio.sleep(0.01)
    field = f"{wallet_id}:1"
    entry = decode_ledger_entry(await aredis.hget(keys.ledger(REF), field))  # type: ignore[arg-type]
    forged = msgspec.structs.replace(entry, description="forged")
    await aredis.hset(keys.ledger(REF), field, encode_ledger_entry(forged))
    result = tally(clean_redis, "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"ledger.{field}.description" in result.stdout and "drifts=1" in result.stdout, result.stdout


async def test_a_store_that_kept_every_ledger_entry_is_refused_then_migrated_to_the_kept_window(
    clean_redis: str, aredis: Redis,
) -> None:
    """Layout 2 kept every ledger entry in Redis; this layout keeps each wallet's newest TALLY_LEDGER_KEEP."""
    keys = Keys(PARTITIONS)
    store = EventStore(aredis, keys, 3600)
    await store.index_wallet(WALLET, REF)
    await store.append(REF, history())
    async with running_app(clean_redis, settings=make_settings(ledger_keep=100)):  # folds every entry into Redis
        deadline = time.monotonic() + 120
        while await aredis.hlen(keys.ledger(REF)) < 6:
            assert time.monotonic() < deadline, "the projector never stored the ledger"
            await asyncio.sleep(0.02)
    await aredis.hset(keys.meta(), "layout", 2)
    with pytest.raises(LayoutRefused, match=r"every ledger entry kept in Redis.*tally migrate"):
        async with running_app(clean_redis, projector=False):
            pass
    migrated = tally(clean_redis, "migrate", env={"TALLY_LEDGER_KEEP": "3"})
    assert migrated.returncode == 0 and f"migrated to layout {LAYOUT}" in migrated.stdout, migrated.stderr
    verified = tally(clean_redis, "verify", env={"TALLY_LEDGER_KEEP": "3"})
    assert verified.returncode == 0 and "drifts=0" in verified.stdout, verified.stdout + verified.stderr
    live = Keys(PARTITIONS, generation=await live_generation(aredis, keys))
    assert await aredis.hlen(live.ledger(REF)) == 3


async def test_a_store_whose_webhook_keys_had_no_hash_tag_is_refused_then_its_keys_renamed(
    clean_redis: str, aredis: Redis,
) -> None:
    """Layout 3 named the webhook sender's keys without a hash tag; `tally migrate` renames them, nothing else."""
    keys = Keys(PARTITIONS)
    store = EventStore(aredis, keys, 3600)
    await store.append(REF, history())
    old = {"tally:webhooks:fence": b"7", "tally:webhooks:delivery:msg_1": b"d",
           "tally:{p001}:alerts:webhooks-checkpoint": b"5-0", "tally:webhooks:tenant_a:env_a:endpoints": b"e"}
    for name, value in old.items():
        await aredis.set(name, value)
    await aredis.hset(keys.meta(), mapping={"layout": 3, "partitions": PARTITIONS})
    refused = tally(clean_redis, "lag")
    assert refused.returncode == 2 and "webhook sender state" in refused.stderr, refused.stderr
    migrated = tally(clean_redis, "migrate")
    assert migrated.returncode == 0 and f"migrated to layout {LAYOUT}" in migrated.stdout, migrated.stderr
    assert [await aredis.get(keys.webhook_fence()), await aredis.get(keys.webhook_delivery("msg_1")),
            await aredis.get(keys.webhook_checkpoint(1))] == [b"7", b"d", b"5-0"]
    assert await aredis.get("tally:webhooks:tenant_a:env_a:endpoints") == b"e"  # endpoints keep their key
    assert await aredis.exists("tally:webhooks:fence", "tally:{p001}:alerts:webhooks-checkpoint") == 0
    assert tally(clean_redis, "lag").returncode == 0
    assert len(await store.read_log(REF)) == len(history())
