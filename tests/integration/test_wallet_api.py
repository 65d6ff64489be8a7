"""The wallet API on a real Redis: create, top up (with retries), read exact and cached, tenant isolation."""

from typing import Any

from redis.asyncio import Redis

from domain.identity import AccountRef
from tests.support.harness import OTHER_KEY, running_app, wait_folded


async def create(client: Any, **body: Any) -> dict[str, Any]:
    payload = {"customer_id": "cust_1", "currency": "USD", **body}
    response = await client.post("/v1/wallets", json=payload)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_top_up_is_visible_in_the_next_read_with_the_projector_stopped(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet = await create(client, conversion_rate="2")
        response = await client.post(f"/v1/wallets/{wallet['id']}/top-up",
                                     json={"credits_to_add": "12.5", "transaction_reason": "PURCHASED_CREDIT_DIRECT"})
        assert response.status_code == 200, response.text
        exact = (await client.get(f"/v1/wallets/{wallet['id']}/balance/real-time")).json()
        cached = (await client.get(f"/v1/wallets/{wallet['id']}/balance/real-time?from_cache=true")).json()
    assert (exact["credit_balance"], exact["balance"], exact["is_cached_fallback"]) == ("12.5", "25", False)
    assert cached["is_cached_fallback"] is False  # nothing folded yet: the cached read falls back to exact
    assert cached["credit_balance"] == "12.5"


async def test_cached_read_after_catch_up_equals_the_exact_read(clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis) as client:
        wallet = await create(client, initial_credits_to_load="7")
        await client.post(f"/v1/wallets/{wallet['id']}/top-up",
                          json={"amount": "3", "transaction_reason": "FREE_CREDIT_GRANT"})
        await wait_folded(aredis, AccountRef("tenant_a", "env_a", "cust_1"))
        url = f"/v1/wallets/{wallet['id']}/balance/real-time?expand=credits_available_breakdown"
        exact = (await client.get(url)).json()
        cached = (await client.get(url + "&from_cache=true")).json()
    assert cached.pop("is_cached_fallback") is True and exact.pop("is_cached_fallback") is False
    assert cached == exact
    assert exact["credits_available_breakdown"] == {"free": "10", "purchased": "0"}


async def test_a_retried_top_up_adds_nothing_and_a_changed_retry_is_refused(clean_redis: str) -> None:
    async with running_app(clean_redis) as client:
        wallet = await create(client)
        body = {"credits_to_add": "5", "transaction_reason": "PURCHASED_CREDIT_DIRECT", "idempotency_key": "k-1"}
        first = await client.post(f"/v1/wallets/{wallet['id']}/top-up", json=body)
        again = await client.post(f"/v1/wallets/{wallet['id']}/top-up", json=body)
        changed = await client.post(f"/v1/wallets/{wallet['id']}/top-up", json={**body, "credits_to_add": "6"})
        balance = (await client.get(f"/v1/wallets/{wallet['id']}/balance/real-time")).json()
    assert again.status_code == 200
    assert again.json()["wallet_transaction"] == first.json()["wallet_transaction"]
    assert changed.status_code == 409 and changed.json()["code"] == "already_exists"
    assert balance["credit_balance"] == "5"


async def test_another_tenants_wallet_is_not_found_and_no_key_is_unauthorised(clean_redis: str) -> None:
    async with running_app(clean_redis) as client:
        wallet = await create(client)
        foreign = await client.get(f"/v1/wallets/{wallet['id']}", headers={"x-api-key": OTHER_KEY})
        anonymous = await client.get(f"/v1/wallets/{wallet['id']}", headers={"x-api-key": ""})
        wrong = await client.get(f"/v1/wallets/{wallet['id']}", headers={"x-api-key": "nope"})
    assert foreign.status_code == 404 and foreign.json()["code"] == "not_found"
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert set(wrong.json()) == {"code", "message", "http_status_code", "details"}


async def test_bad_input_is_a_400_and_changes_nothing(clean_redis: str) -> None:
    async with running_app(clean_redis) as client:
        wallet = await create(client)
        url = f"/v1/wallets/{wallet['id']}/top-up"
        replies = [
            await client.post(url, content=b"{not json"),
            await client.post(url, json={"credits_to_add": "abc", "transaction_reason": "PURCHASED_CREDIT_DIRECT"}),
            await client.post(url, json={"credits_to_add": "-1", "transaction_reason": "PURCHASED_CREDIT_DIRECT"}),
            await client.post(url, json={"credits_to_add": "1", "transaction_reason": "NOT_A_REASON"}),
            await client.post(url, json={"credits_to_add": "1", "transaction_reason": "FREE_CREDIT_GRANT",
                                         "expiry_date_utc": "2001-01-01T00:00:00Z"}),
        ]
        transactions = (await client.get(f"/v1/wallets/{wallet['id']}/transactions")).json()
    assert [r.status_code for r in replies] == [400] * 5
    assert all(r.json()["code"] == "validation_error" for r in replies)
    assert transactions["pagination"]["total"] == 0


async def test_transactions_show_balances_before_and_after_and_the_lots_that_paid(clean_redis: str) -> None:
    async with running_app(clean_redis) as client:
        wallet = await create(client)
        url = f"/v1/wallets/{wallet['id']}"
        await client.post(f"{url}/top-up", json={"credits_to_add": "4", "transaction_reason": "FREE_CREDIT_GRANT"})
        paid = await client.post(f"{url}/top-up", json={"credits_to_add": "6", "priority": 1,
                                                        "transaction_reason": "PURCHASED_CREDIT_DIRECT"})
        debit = await client.post(f"{url}/debit", json={"credits": "7"})
        items = (await client.get(f"{url}/transactions")).json()["items"]
    assert debit.status_code == 200, debit.text
    newest = items[0]
    assert (newest["type"], newest["credit_amount"]) == ("debit", "7")
    assert (newest["credit_balance_before"], newest["credit_balance_after"]) == ("10", "3")
    assert newest["lots_paid"][0] == {"transaction_id": paid.json()["wallet_transaction"]["id"], "credits": "6"}
    assert newest["lots_paid"][1]["credits"] == "1"
