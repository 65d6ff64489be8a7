"""Usage through the official flexprice SDK (2.1.20) against `tally dev` in its own process: events ingested one by
one and in bulk, retries counted once, pending charges exact in the real-time balance, bad events refused."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from flexprice import Flexprice
from flexprice.models import IngestEventRequestTypedDict
from flexprice.models.errors import ErrorResponse

from tests.support.dev_server import KEY, DevServer

FIGURES = ["credit_balance", "balance", "current_period_usage", "unpaid_invoices_amount", "real_time_balance",
           "real_time_credit_balance"]
FOLD_TIMEOUT = 10.0
# The SDK has no call for tally's rate card (its price API is plan-based), so the prices are posted over HTTP.
PRICES = [
    {"lookup_key": "sdk-tokens", "event_name": "sdk_tokens", "currency": "USD",
     "aggregation": {"type": "SUM", "field": "tokens"}, "billing_model": "FLAT_FEE", "amount": "0.25"},
    {"lookup_key": "sdk-calls", "event_name": "sdk_calls", "currency": "USD", "aggregation": {"type": "COUNT"},
     "billing_model": "TIERED", "tier_mode": "SLAB",
     "tiers": [{"up_to": "2", "unit_amount": "1"}, {"unit_amount": "0.5"}]},
]


def figures(balance: Any) -> dict[str, Any]:
    return {name: getattr(balance, name) for name in FIGURES}


def http(server: DevServer) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/v1", headers={"x-api-key": KEY}, timeout=10)


@pytest.fixture(scope="module")
def rate_card(tally_dev: DevServer) -> Iterator[None]:
    with http(tally_dev) as client:
        for price in PRICES:
            created = client.post("/prices", json=price)
            assert created.status_code == 201, created.text
    yield


def customer_with_wallet(server: DevServer, sdk: Flexprice, customer: str, rate: str, credits: str) -> str:
    """A daily billing period that opened an hour ago (so every event falls in one period) and a wallet."""
    anchor = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    with http(server) as client:
        billing = client.put(f"/customers/{customer}/billing",
                             json={"anchor": anchor.isoformat(), "period": {"unit": "day", "count": 1}})
        assert billing.status_code == 200, billing.text
    wallet = sdk.wallets.create_wallet(customer_id=customer, currency="USD", conversion_rate=rate,
                                       initial_credits_to_load=credits)
    assert wallet.id is not None and wallet.credit_balance == credits
    return wallet.id


def usage_lines(server: DevServer, customer: str) -> dict[str, tuple[str, str, int]]:
    with http(server) as client:
        summary = client.get(f"/customers/{customer}/usage").json()
    return {line["lookup_key"]: (line["quantity"], line["amount"], line["events"])
            for period in summary["periods"] for line in period["lines"]}


def cached_equals_exact(server: DevServer, wallet_id: str) -> dict[str, Any]:
    """Poll the cached read until the embedded projector has folded everything, then compare it with the exact one."""
    url = f"/wallets/{wallet_id}/balance/real-time"
    with http(server) as client:
        exact = client.get(url).json()
        deadline = time.monotonic() + FOLD_TIMEOUT
        while True:
            cached: dict[str, Any] = client.get(url, params={"from_cache": "true"}).json()
            if cached.get("folded_position") == exact["read_position"]:
                break
            assert time.monotonic() < deadline, f"snapshot never caught up: {cached}\n{server.log_tail()}"
            time.sleep(0.02)
        exact = client.get(url).json()  # again, after the fold: the first could show an earlier snapshot position
    assert (exact.pop("is_cached_fallback"), cached.pop("is_cached_fallback")) == (False, True)
    assert cached == exact
    return cached


def test_single_events_and_retries_charge_the_wallet_exactly(
    tally_dev: DevServer, sdk: Flexprice, rate_card: None
) -> None:
    wallet_id = customer_with_wallet(tally_dev, sdk, "cust_sdk_usage", rate="2", credits="50")

    def ingest(event_id: str, name: str, properties: dict[str, str]) -> dict[str, str]:
        return sdk.events.ingest_event(event_name=name, external_customer_id="cust_sdk_usage", event_id=event_id,
                                       properties=properties, source="sdk-test")

    replies = [
        ingest("sdk-e1", "sdk_tokens", {"tokens": "10"}),
        ingest("sdk-e2", "sdk_tokens", {"tokens": "2.5"}),
        ingest("sdk-e1", "sdk_tokens", {"tokens": "10"}),  # the producer's retry
        ingest("sdk-e1", "sdk_tokens", {"tokens": "1000"}),  # a retry with another payload keeps the first
        *(ingest(f"sdk-c{n}", "sdk_calls", {"endpoint": "/v1/search"}) for n in range(3)),
        ingest("sdk-c0", "sdk_calls", {"endpoint": "/v1/search"}),
    ]
    assert [reply["event_id"] for reply in replies] == [
        "sdk-e1", "sdk-e2", "sdk-e1", "sdk-e1", "sdk-c0", "sdk-c1", "sdk-c2", "sdk-c0"]
    assert {reply["message"] for reply in replies} == {"Event accepted for processing"}

    balance = sdk.wallets.get_wallet_balance(id=wallet_id)
    # 12.5 tokens x 0.25 = 3.125; 3 calls tiered = 2 x 1 + 1 x 0.5 = 2.5; pending 5.625 against 50 credits x 2 = 100
    assert figures(balance) == {
        "credit_balance": "50", "balance": "100", "current_period_usage": "5.625", "unpaid_invoices_amount": "0",
        "real_time_balance": "94.375", "real_time_credit_balance": "47.1875",
    }
    assert usage_lines(tally_dev, "cust_sdk_usage") == {
        "sdk-tokens": ("12.5", "3.125", 2), "sdk-calls": ("3", "2.5", 3)}
    cached = cached_equals_exact(tally_dev, wallet_id)
    assert (cached["current_period_usage"], cached["real_time_credit_balance"]) == ("5.625", "47.1875")


def test_a_bulk_with_a_retried_event_charges_it_once(tally_dev: DevServer, sdk: Flexprice, rate_card: None) -> None:
    wallet_id = customer_with_wallet(tally_dev, sdk, "cust_sdk_bulk", rate="1", credits="20")
    events: list[IngestEventRequestTypedDict] = [
        {"event_name": "sdk_tokens", "external_customer_id": "cust_sdk_bulk", "event_id": "bulk-1",
         "properties": {"tokens": "4"}},
        {"event_name": "sdk_tokens", "external_customer_id": "cust_sdk_bulk", "event_id": "bulk-2",
         "properties": {"tokens": "6"}},
        {"event_name": "sdk_tokens", "external_customer_id": "cust_sdk_bulk", "event_id": "bulk-1",
         "properties": {"tokens": "400"}},  # retried inside the batch with another payload: the first one counts
        {"event_name": "sdk_calls", "external_customer_id": "cust_sdk_bulk", "event_id": "bulk-3"},
    ]
    accepted = sdk.events.ingest_events_bulk(events=events)
    retried = sdk.events.ingest_events_bulk(events=events[:2])  # the whole batch again, as a producer retries it
    assert accepted["message"] == retried["message"] == "Events accepted for processing"

    balance = sdk.wallets.get_wallet_balance(id=wallet_id)
    # 10 tokens x 0.25 = 2.5; 1 call = 1; pending 3.5 against 20 credits x 1
    assert figures(balance) == {
        "credit_balance": "20", "balance": "20", "current_period_usage": "3.5", "unpaid_invoices_amount": "0",
        "real_time_balance": "16.5", "real_time_credit_balance": "16.5",
    }
    assert usage_lines(tally_dev, "cust_sdk_bulk") == {"sdk-tokens": ("10", "2.5", 2), "sdk-calls": ("1", "1", 1)}
    cached_equals_exact(tally_dev, wallet_id)


def test_bad_events_raise_and_charge_nothing(tally_dev: DevServer, sdk: Flexprice, rate_card: None) -> None:
    wallet_id = customer_with_wallet(tally_dev, sdk, "cust_sdk_bad", rate="1", credits="10")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    good: dict[str, Any] = {"event_name": "sdk_tokens", "external_customer_id": "cust_sdk_bad",
                            "properties": {"tokens": "8"}}

    with pytest.raises(ErrorResponse) as single:
        sdk.events.ingest_event(**good, event_id="bad-1", timestamp=future)
    with pytest.raises(ErrorResponse) as zone:
        sdk.events.ingest_event(**good, event_id="bad-2", timestamp="2030-01-01T00:00:00")  # no zone offset
    refused: list[IngestEventRequestTypedDict] = [  # one good, one from the future, one unnamed
        {"event_name": "sdk_tokens", "external_customer_id": "cust_sdk_bad", "event_id": "bad-3",
         "properties": {"tokens": "8"}},
        {"event_name": "sdk_tokens", "external_customer_id": "cust_sdk_bad", "event_id": "bad-4",
         "properties": {"tokens": "8"}, "timestamp": future},
        {"event_name": "", "external_customer_id": "cust_sdk_bad", "event_id": "bad-5"},
    ]
    with pytest.raises(ErrorResponse) as bulk:
        sdk.events.ingest_events_bulk(events=refused)

    for raised in (single.value, zone.value, bulk.value):
        assert (raised.status_code, raised.data.code, raised.data.http_status_code) == (400, "validation_error", 400)
    assert single.value.raw_response.json()["details"]["context"]["field"] == "timestamp"
    assert zone.value.raw_response.json()["details"]["context"]["field"] == "timestamp"
    assert sorted(bulk.value.raw_response.json()["details"]["context"]["events"]) == ["1", "2"]

    balance = sdk.wallets.get_wallet_balance(id=wallet_id)
    assert figures(balance) == {
        "credit_balance": "10", "balance": "10", "current_period_usage": "0", "unpaid_invoices_amount": "0",
        "real_time_balance": "10", "real_time_credit_balance": "10",
    }, "a refused bulk is refused whole: its good event (bad-3) must not be charged"
    assert usage_lines(tally_dev, "cust_sdk_bad") == {}
    # the refused ids were never remembered: sent again, correctly, they are accepted and charged once
    assert sdk.events.ingest_event(**good, event_id="bad-1")["event_id"] == "bad-1"
    assert sdk.events.ingest_event(**good, event_id="bad-3")["event_id"] == "bad-3"
    assert sdk.wallets.get_wallet_balance(id=wallet_id).current_period_usage == "4"  # 16 tokens x 0.25
