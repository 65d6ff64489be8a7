"""The alert log (`POST /v1/alerts/search`) on a real Redis: each filter equals the whole log filtered here by the
same rule, newest first by default, paged; bad or unsupported input is a 400; other tenants see nothing."""

from typing import Any

import pytest
from redis.asyncio import Redis

from domain.identity import AccountRef
from store import alert_log
from tests.support.harness import OTHER_KEY, running_app, wait_folded

ALERTS = {"alert_enabled": True, "critical": {"threshold": 10, "condition": "below"},
          "warning": {"threshold": 50, "condition": "below"}}


async def wallet_with_swings(client: Any, aredis: Redis, customer: str) -> str:
    """A wallet that starts in alarm (0 credits), recovers (100), warns (40) and drops (5)."""
    wallet = await client.post("/v1/wallets", json={"customer_id": customer, "currency": "USD",
                                                    "alert_settings": ALERTS})
    wallet_id: str = wallet.json()["id"]
    await client.post(f"/v1/wallets/{wallet_id}/top-up", json={"credits_to_add": "100",
                                                               "transaction_reason": "FREE_CREDIT_GRANT"})
    for credits in ("60", "35"):
        assert (await client.post(f"/v1/wallets/{wallet_id}/debit", json={"credits": credits})).status_code == 200
    await wait_folded(aredis, AccountRef("tenant_a", "env_a", customer))
    return wallet_id


async def search(client: Any, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/alerts/search", json=body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_each_filter_equals_the_whole_log_filtered_by_the_same_rule(clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis) as client:
        first = await wallet_with_swings(client, aredis, "cust_log_1")
        second = await wallet_with_swings(client, aredis, "cust_log_2")
        every = (await search(client, limit=1000))["items"]
        by_customer = await search(client, customer_id="cust_log_1", limit=1000)
        by_wallet = await search(client, entity_id=second, entity_type="wallet", limit=1000)
        in_alarm = await search(client, alert_status="in_alarm", limit=1000)
        credit = await search(client, alert_type="low_credit_balance", limit=1000)
        oldest = await search(client, order="asc", limit=2, offset=1)
        since = await search(client, start_time=every[2]["created_at"], limit=1000)
        foreign = await client.post("/v1/alerts/search", json={}, headers={"x-api-key": OTHER_KEY})
    assert len(every) == 16  # per wallet: 4 transitions on each of 2 metrics
    assert {e["entity_id"] for e in every} == {first, second}
    stamps = [(e["created_at"], e["tally"]["position"]) for e in every]
    assert stamps == sorted(stamps, reverse=True)
    assert by_customer["items"] == [e for e in every if e["customer_id"] == "cust_log_1"]
    assert by_customer["pagination"]["total"] == 8
    assert by_wallet["items"] == [e for e in every if e["entity_id"] == second]
    assert in_alarm["items"] == [e for e in every if e["alert_status"] == "in_alarm"]
    assert credit["items"] == [e for e in every if e["alert_type"] == "low_credit_balance"]
    assert oldest["items"] == list(reversed(every))[1:3]
    assert since["items"] == [e for e in every if e["created_at"] >= every[2]["created_at"]]
    assert foreign.json()["items"] == []
    dropped = next(e for e in every if e["tally"]["event_type"] == "wallet.ongoing_balance.dropped")
    assert dropped["alert_info"]["value_at_time"] == 5.0 and dropped["wallet"]["id"] in {first, second}


async def test_bad_or_unsupported_input_and_a_scope_too_large_are_400s(
    clean_redis: str, aredis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_app(clean_redis) as client:
        await wallet_with_swings(client, aredis, "cust_log_3")
        refused = [await client.post("/v1/alerts/search", json=body) for body in (
            {"surprise": 1}, {"filters": [{"field": "x"}]}, {"expand": "wallet"}, {"alert_status": "red"},
            {"sort": [{"field": "alert_status"}]}, {"start_time": "yesterday"}, {"limit": 0})]
        monkeypatch.setattr(alert_log, "LOG_BUDGET", 3)
        too_many = await client.post("/v1/alerts/search", json={})
        narrowed = await client.post("/v1/alerts/search", json={"customer_id": "cust_log_3"})
    assert [r.status_code for r in refused] == [400] * 7, [r.text for r in refused]
    assert too_many.status_code == 400 and "customer_id" in too_many.json()["message"]
    assert narrowed.status_code == 400  # one customer's partition still holds more than 3 here
