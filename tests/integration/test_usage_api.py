"""Usage on a real Redis: ingest, price, pending charges in the balance, settlement by the projector's clock."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from domain.identity import AccountRef
from tests.support.harness import ManualClock, make_settings, running_app, wait_folded


async def wallet_with_price(client: Any, customer: str = "cust_u") -> str:
    price = await client.post("/v1/prices", json={
        "event_name": "api_call", "currency": "USD", "aggregation": {"type": "SUM", "field": "tokens"},
        "billing_model": "FLAT_FEE", "amount": "0.5",
    })
    assert price.status_code == 201, price.text
    wallet = await client.post("/v1/wallets", json={"customer_id": customer, "currency": "USD",
                                                    "initial_credits_to_load": "100", "conversion_rate": "2"})
    assert wallet.status_code == 200, wallet.text
    wallet_id: str = wallet.json()["id"]
    return wallet_id


async def test_accepted_usage_lowers_the_real_time_balance_at_once_and_retries_count_once(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = await wallet_with_price(client)
        event = {"event_name": "api_call", "external_customer_id": "cust_u", "event_id": "e-1",
                 "properties": {"tokens": "10"}}
        first = await client.post("/v1/events", json=event)
        retry = await client.post("/v1/events", json=event)
        bulk = await client.post("/v1/events/bulk", json={"events": [event, {**event, "event_id": "e-2"}]})
        balance = (await client.get(f"/v1/wallets/{wallet_id}/balance/real-time")).json()
        usage = (await client.get("/v1/customers/cust_u/usage")).json()
    assert [first.status_code, retry.status_code, bulk.status_code] == [202, 202, 202]
    assert first.json() == {"message": "Event accepted for processing", "event_id": "e-1"}
    assert bulk.json() == {"message": "Events accepted for processing", "accepted": "2", "duplicates": "1"}
    assert (balance["current_period_usage"], balance["balance"], balance["real_time_balance"]) == ("10", "200", "190")
    assert balance["real_time_credit_balance"] == "95"
    assert usage["periods"][0]["lines"][0]["quantity"] == "20"
    assert usage["periods"][0]["totals"] == {"usd": "10"}


async def test_a_bulk_with_one_bad_event_is_refused_whole(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        good = {"event_name": "api_call", "external_customer_id": "cust_b"}
        reply = await client.post("/v1/events/bulk", json={"events": [
            good, {"event_name": "", "external_customer_id": "cust_b"}, {**good, "timestamp": future},
            {**good, "properties": {"nested": {"no": 1}}},
        ]})
        usage = (await client.get("/v1/customers/cust_b/usage")).json()
    assert reply.status_code == 400
    assert sorted(reply.json()["details"]["context"]["events"]) == ["1", "2", "3"]
    assert usage["usage_events"] == 0


async def test_the_clock_settles_a_closed_period_against_credits_and_invoices_the_shortfall(
    clean_redis: str, aredis: Redis
) -> None:
    settings = make_settings(period_grace_seconds=0, clock_interval_ms=50)
    clock = ManualClock(datetime.now(UTC))  # the app and the projector's clock read it: time passes when we say so
    async with running_app(clean_redis, settings=settings, clock=clock) as client:
        wallet_id = await wallet_with_price(client)
        billing = await client.put("/v1/customers/cust_u/billing", json={
            "anchor": (clock.now - timedelta(seconds=30)).isoformat(), "period": {"unit": "minute", "count": 1}})
        assert billing.status_code == 200, billing.text
        ingest = await client.post("/v1/events", json={
            "event_name": "api_call", "external_customer_id": "cust_u", "properties": {"tokens": 500},
        })
        assert ingest.status_code == 202
        await wait_folded(aredis, AccountRef("tenant_a", "env_a", "cust_u"))
        open_period = (await client.get("/v1/customers/cust_u/invoices")).json()["items"]
        clock.advance(timedelta(seconds=30))  # the one-minute period ends now
        deadline = asyncio.get_running_loop().time() + 20
        invoices: list[Any] = []
        while not invoices:
            assert asyncio.get_running_loop().time() < deadline, "the period was not settled in time"
            await asyncio.sleep(0.02)
            invoices = (await client.get("/v1/customers/cust_u/invoices")).json()["items"]
        balance = (await client.get(f"/v1/wallets/{wallet_id}/balance/real-time")).json()
        items = (await client.get(f"/v1/wallets/{wallet_id}/transactions")).json()["items"]
        paid = await client.post(f"/v1/customers/cust_u/invoices/{invoices[0]['id']}/payments", json={})
        after = (await client.get(f"/v1/wallets/{wallet_id}/balance/real-time")).json()
    # 500 tokens x 0.5 = 250 USD; the wallet holds 100 credits x 2 = 200 USD; 50 USD stay unpaid.
    assert open_period == []  # nothing is settled before the period ends, however long the test took
    invoice = invoices[0]
    assert (invoice["amount"], invoice["paid_from_wallet"], invoice["amount_unpaid"]) == ("250", "200", "50")
    assert (balance["credit_balance"], balance["current_period_usage"], balance["unpaid_invoices_amount"]) == (
        "0", "0", "50")
    assert balance["real_time_balance"] == "-50"
    assert items[0]["transaction_reason"] == "CREDIT_ADJUSTMENT" and items[0]["credit_amount"] == "100"
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert after["unpaid_invoices_amount"] == "0" and after["real_time_balance"] == "0"
