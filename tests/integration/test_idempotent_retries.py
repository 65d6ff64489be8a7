"""Idempotency keys are looked up before a command is decided: a retry gets the original transaction even when
deciding again would refuse it; a different body is a 409; concurrent identical requests make one transaction."""

import asyncio
from typing import Any

import httpx

from tests.support.harness import running_app


async def wallet(client: httpx.AsyncClient, credits: str = "10") -> str:
    reply = await client.post("/v1/wallets", json={"customer_id": "cust_retry", "currency": "USD",
                                                   "initial_credits_to_load": credits})
    assert reply.status_code == 200, reply.text
    wallet_id: str = reply.json()["id"]
    return wallet_id


async def ledger(client: httpx.AsyncClient, wallet_id: str) -> list[Any]:
    items: list[Any] = (await client.get(f"/v1/wallets/{wallet_id}/transactions")).json()["items"]
    return items


async def test_a_debit_of_the_whole_balance_retried_returns_the_original_transaction(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await wallet(client)
        body = {"credits": "10", "idempotency_key": "debit-all"}
        first = await client.post(f"/v1/wallets/{wallet_id}/debit", json=body)
        retry = await client.post(f"/v1/wallets/{wallet_id}/debit", json=body)
        items = await ledger(client, wallet_id)
    assert first.status_code == retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    assert [i["type"] for i in items] == ["debit", "credit"]


async def test_a_top_up_retried_after_a_freeze_returns_the_original_transaction(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await wallet(client)
        body = {"credits_to_add": "5", "transaction_reason": "PURCHASED_CREDIT_DIRECT", "idempotency_key": "tu-1"}
        first = await client.post(f"/v1/wallets/{wallet_id}/top-up", json=body)
        frozen = await client.post(f"/v1/wallets/{wallet_id}/freeze")
        retry = await client.post(f"/v1/wallets/{wallet_id}/top-up", json=body)
        fresh = await client.post(f"/v1/wallets/{wallet_id}/top-up", json={**body, "idempotency_key": "tu-2"})
    assert first.status_code == frozen.status_code == retry.status_code == 200, retry.text
    assert retry.json()["wallet_transaction"] == first.json()["wallet_transaction"]
    assert fresh.status_code == 400 and fresh.json()["code"] == "invalid_operation"


async def test_a_different_body_under_a_used_key_is_a_409_even_when_it_would_be_refused(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await wallet(client)
        first = await client.post(f"/v1/wallets/{wallet_id}/debit", json={"credits": "10", "idempotency_key": "k"})
        changed = await client.post(f"/v1/wallets/{wallet_id}/debit", json={"credits": "3", "idempotency_key": "k"})
        items = await ledger(client, wallet_id)
    assert first.status_code == 200
    assert changed.status_code == 409 and changed.json()["code"] == "already_exists"
    assert len(items) == 2


async def test_concurrent_identical_requests_make_one_transaction_and_the_same_reply(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await wallet(client)
        debit = {"credits": "10", "idempotency_key": "race-debit"}
        top_up = {"credits_to_add": "7", "transaction_reason": "FREE_CREDIT_GRANT", "idempotency_key": "race-top-up"}
        debits = await asyncio.gather(*(client.post(f"/v1/wallets/{wallet_id}/debit", json=debit)
                                        for _ in range(8)))
        top_ups = await asyncio.gather(*(client.post(f"/v1/wallets/{wallet_id}/top-up", json=top_up)
                                         for _ in range(8)))
        items = await ledger(client, wallet_id)
        balance = (await client.get(f"/v1/wallets/{wallet_id}/balance/real-time")).json()
    for replies in (debits, top_ups):
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
        assert len({r.json()["wallet_transaction"]["id"] for r in replies}) == 1
    assert sorted(i["type"] for i in items) == ["credit", "credit", "debit"]
    assert balance["credit_balance"] == "7"
