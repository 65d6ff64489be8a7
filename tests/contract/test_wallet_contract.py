"""The wallet loop on every backend: what a client sees through the API (the store, the projector and the fold
underneath) is the same on a real Redis and on fakeredis."""

from typing import Any

from redis.asyncio import Redis

from domain.identity import AccountRef
from tests.support.backends import Backend
from tests.support.harness import running_app, wait_folded

CUSTOMER = AccountRef("tenant_a", "env_a", "cust_c")


async def wallet_with_price(client: Any) -> str:
    price = await client.post("/v1/prices", json={
        "event_name": "api_call", "currency": "USD", "aggregation": {"type": "SUM", "field": "tokens"},
        "billing_model": "FLAT_FEE", "amount": "0.5",
    })
    assert price.status_code == 201, price.text
    wallet = await client.post("/v1/wallets", json={"customer_id": CUSTOMER.customer_id, "currency": "USD",
                                                    "initial_credits_to_load": "100"})
    assert wallet.status_code == 200, wallet.text
    wallet_id: str = wallet.json()["id"]
    return wallet_id


async def test_usage_and_top_ups_fold_to_the_exact_balance_and_retries_count_once(
    backend: Backend, store_client: Redis
) -> None:
    async with running_app(None, connect=backend.connect) as client:
        wallet_id = await wallet_with_price(client)
        top_up = {"credits_to_add": "5", "transaction_reason": "PURCHASED_CREDIT_DIRECT", "idempotency_key": "t-1"}
        assert (await client.post(f"/v1/wallets/{wallet_id}/top-up", json=top_up)).status_code == 200
        assert (await client.post(f"/v1/wallets/{wallet_id}/top-up", json=top_up)).status_code == 200
        event = {"event_name": "api_call", "external_customer_id": CUSTOMER.customer_id, "event_id": "e-1",
                 "properties": {"tokens": "10"}}
        assert (await client.post("/v1/events", json=event)).status_code == 202
        bulk = await client.post("/v1/events/bulk", json={"events": [event, {**event, "event_id": "e-2"}]})
        before_fold = (await client.get(f"/v1/wallets/{wallet_id}/balance/real-time")).json()
        await wait_folded(store_client, CUSTOMER)
        exact = (await client.get(f"/v1/wallets/{wallet_id}/balance/real-time")).json()
        cached = (await client.get(f"/v1/wallets/{wallet_id}/balance/real-time?from_cache=true")).json()
        listed = (await client.get(f"/v1/wallets/{wallet_id}/transactions")).json()
    assert bulk.json() == {"message": "Events accepted for processing", "accepted": "2", "duplicates": "1"}
    for read in (before_fold, exact):
        assert (read["credit_balance"], read["current_period_usage"], read["real_time_balance"]) == ("105", "10", "95")
    assert cached.pop("is_cached_fallback") is True and exact.pop("is_cached_fallback") is False
    assert cached == exact
    assert [item["amount"] for item in listed["items"]] == ["5", "100"]


async def test_bad_input_changes_nothing_and_another_tenant_sees_nothing(backend: Backend) -> None:
    async with running_app(None, connect=backend.connect, projector=False) as client:
        wallet_id = await wallet_with_price(client)
        refused = await client.post(f"/v1/wallets/{wallet_id}/top-up",
                                    json={"credits_to_add": "-1", "transaction_reason": "PURCHASED_CREDIT_DIRECT"})
        foreign = await client.get(f"/v1/wallets/{wallet_id}/balance/real-time",
                                   headers={"x-api-key": "other-tenant-key"})
        balance = (await client.get(f"/v1/wallets/{wallet_id}/balance/real-time")).json()
    assert refused.status_code == 400 and set(refused.json()) == {"code", "message", "http_status_code", "details"}
    assert foreign.status_code == 404
    assert balance["credit_balance"] == "100"


async def test_a_customer_reaches_one_account_by_either_id_and_its_wallets_list_by_lookup_key(
    backend: Backend, store_client: Redis
) -> None:
    async with running_app(None, connect=backend.connect) as client:
        assert (await client.post("/v1/prices", json={
            "event_name": "api_call", "currency": "USD", "aggregation": {"type": "COUNT"},
            "billing_model": "FLAT_FEE", "amount": "1"})).status_code == 201
        customer = (await client.post("/v1/customers", json={"external_id": "ext-contract"})).json()
        wallet = (await client.post("/v1/wallets", json={"customer_id": customer["id"], "currency": "USD",
                                                         "initial_credits_to_load": "10"})).json()
        event = {"event_name": "api_call", "external_customer_id": "ext-contract", "event_id": "c-1"}
        assert (await client.post("/v1/events", json=event)).status_code == 202
        await wait_folded(store_client, AccountRef("tenant_a", "env_a", "ext-contract"))
        listed = await client.get("/v1/customers/wallets", params={"lookup_key": "ext-contract",
                                                                   "include_real_time_balance": "true"},
                                  headers={"x-max-live": "60"})
        found = (await client.post("/v1/customers/search", json={"external_ids": ["ext-contract"]})).json()
    assert listed.status_code == 200, listed.text
    assert [(w["id"], w["real_time_credit_balance"]) for w in listed.json()] == [(wallet["id"], "9")]
    assert [c["id"] for c in found["items"]] == [customer["id"]]
