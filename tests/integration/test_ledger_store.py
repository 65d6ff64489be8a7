"""Ledger entries live apart from the snapshot: the transactions list pages by cursor over the stored entries and the
unfolded tail alike, a paid top-up's entry is rewritten, idempotent retries find the original by id, and the snapshot
does not grow with the ledger."""

from decimal import Decimal
from typing import Any

import httpx
from redis.asyncio import Redis

from domain.events import CreditsDebited, CreditsGranted
from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from store.verify import verify_all
from tests.support.harness import PARTITIONS, running_app, wait_folded

REF = AccountRef("tenant_a", "env_a", "cust_ledger")


async def create_wallet(client: httpx.AsyncClient, credits: str = "1000") -> str:
    reply = await client.post("/v1/wallets", json={"customer_id": REF.customer_id, "currency": "USD",
                                                   "initial_credits_to_load": credits})
    assert reply.status_code == 200, reply.text
    wallet_id: str = reply.json()["id"]
    return wallet_id


async def every_page(client: httpx.AsyncClient, wallet_id: str, limit: int) -> list[dict[str, Any]]:
    """The whole list, page by page, following next_cursor."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        reply = await client.get(f"/v1/wallets/{wallet_id}/transactions", params=params)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        items.extend(body["items"])
        cursor = body["pagination"].get("next_cursor")
        if cursor is None:
            return items
        params = {"limit": limit, "cursor": cursor}


async def test_the_list_pages_by_cursor_alike_from_the_tail_and_from_the_store(clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await create_wallet(client)
        for n in range(7):
            reply = await client.post(f"/v1/wallets/{wallet_id}/debit", json={"credits": str(n + 1)})
            assert reply.status_code == 200, reply.text
        from_tail = await every_page(client, wallet_id, 3)
        by_offset = (await client.get(f"/v1/wallets/{wallet_id}/transactions",
                                      params={"limit": 2, "offset": 2})).json()
    async with running_app(clean_redis) as client:
        await wait_folded(aredis, REF)
        from_store = await every_page(client, wallet_id, 3)
    assert [i["credit_amount"] for i in from_tail] == ["7", "6", "5", "4", "3", "2", "1", "1000"]
    assert from_store == from_tail
    assert by_offset["items"] == from_tail[2:4]
    assert by_offset["pagination"]["total"] == 8 and by_offset["pagination"]["next_cursor"] == "3"


async def test_a_bad_cursor_is_a_400(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await create_wallet(client)
        reply = await client.get(f"/v1/wallets/{wallet_id}/transactions", params={"cursor": "-1"})
    assert reply.status_code == 400 and set(reply.json()) >= {"code", "message", "http_status_code"}


async def test_paying_a_pending_top_up_rewrites_its_stored_entry(clean_redis: str, aredis: Redis) -> None:
    store = EventStore(aredis, Keys(PARTITIONS), 3600)
    async with running_app(clean_redis) as client:
        wallet_id = await create_wallet(client, "10")
        grant = CreditsGranted(id="evt_pending", at=(await store.read_account(REF)).account.wallets[wallet_id].
                               created_at, wallet_id=wallet_id, transaction_id="wtx_pending", credits=Decimal(50),
                               reason="PURCHASED_CREDIT_INVOICED", pending=True)
        await store.append(REF, [grant])
        await wait_folded(aredis, REF)
        pending = (await every_page(client, wallet_id, 10))[0]
        paid = await client.post(f"/v1/wallets/{wallet_id}/transactions/wtx_pending/pay")
        listed_now = (await every_page(client, wallet_id, 10))[0]
        await wait_folded(aredis, REF)
        listed_folded = (await every_page(client, wallet_id, 10))[0]
    assert pending["id"] == "wtx_pending" and pending["transaction_status"] == "pending"
    assert paid.status_code == 200, paid.text
    assert paid.json()["wallet_transaction"]["transaction_status"] == "completed"
    assert listed_now["transaction_status"] == listed_folded["transaction_status"] == "completed"
    report = await verify_all(store, Projection(aredis, Keys(PARTITIONS)))
    assert report.drifts == [] and report.problems == []


async def test_a_retry_after_the_fold_finds_the_original_transaction_by_id(clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis) as client:
        wallet_id = await create_wallet(client)
        body = {"credits": "4", "idempotency_key": "debit-once"}
        first = await client.post(f"/v1/wallets/{wallet_id}/debit", json=body)
        for _ in range(5):
            await client.post(f"/v1/wallets/{wallet_id}/debit", json={"credits": "1"})
        await wait_folded(aredis, REF)
        retry = await client.post(f"/v1/wallets/{wallet_id}/debit", json=body)
    assert first.status_code == retry.status_code == 200, retry.text
    assert retry.json()["wallet_transaction"] == first.json()["wallet_transaction"]


async def test_the_snapshot_does_not_grow_with_the_ledger(clean_redis: str, aredis: Redis) -> None:
    keys = Keys(PARTITIONS)
    store = EventStore(aredis, keys, 3600)
    sizes = []
    async with running_app(clean_redis) as client:
        wallet_id = await create_wallet(client, "100000")
        at = (await store.read_account(REF)).account.wallets[wallet_id].created_at
        for round_ in range(2):
            debits = [CreditsDebited(id=f"evt_{round_}_{n}", at=at, wallet_id=wallet_id,
                                     transaction_id=f"wtx_{round_}_{n}", credits=Decimal(1),
                                     reason="MANUAL_BALANCE_DEBIT") for n in range(10 if round_ == 0 else 400)]
            await store.append(REF, debits)
            await wait_folded(aredis, REF)
            sizes.append(int(await aredis.hstrlen(keys.snapshot(REF), "s")))
        total = (await client.get(f"/v1/wallets/{wallet_id}/transactions", params={"limit": 1})).json()
    assert total["pagination"]["total"] == 411 == await aredis.hlen(keys.ledger(REF))
    assert sizes[1] - sizes[0] <= 8, f"the snapshot grew with the ledger: {sizes}"
