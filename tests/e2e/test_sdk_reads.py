"""Issue 13's reads through the official flexprice SDK (2.1.20) only, against `tally dev` in its own process:
get_wallet_transactions with each filter (checked against the unfiltered list), query_wallet_transaction,
get_event and list_raw_events; a filter tally does not honour raises instead of returning unfiltered data."""

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flexprice import Flexprice
from flexprice.models import WalletTransactionResponse
from flexprice.models.errors import ErrorResponse, FlexpriceDefaultError

CUSTOMER = "cust_sdk_reads"
Check = tuple[dict[str, Any], Any]


def ids(items: list[WalletTransactionResponse] | None) -> list[str | None]:
    return [item.id for item in items or []]


def test_transactions_filters_and_search(sdk: Flexprice) -> None:
    wallet = sdk.wallets.create_wallet(customer_id=CUSTOMER, currency="USD", initial_credits_to_load="100")
    assert wallet.id is not None
    sdk.wallets.top_up_wallet(id=wallet.id, transaction_reason="PURCHASED_CREDIT_DIRECT", credits_to_add="10",
                              priority=1, idempotency_key="buy-1")
    sdk.wallets.top_up_wallet(id=wallet.id, transaction_reason="FREE_CREDIT_GRANT", credits_to_add="5",
                              expiry_date_utc="2031-01-01T00:00:00Z")
    everything = sdk.wallets.get_wallet_transactions(id_path_parameter=wallet.id, limit=100).items or []
    assert len(everything) >= 3
    middle = everything[1].created_at
    assert middle is not None
    checks: list[Check] = [
        ({"type_": "credit"}, lambda t: t.type == "credit"),
        ({"transaction_reason": "FREE_CREDIT_GRANT"}, lambda t: t.transaction_reason == "FREE_CREDIT_GRANT"),
        ({"transaction_status": "completed"}, lambda t: t.transaction_status == "completed"),
        ({"priority": 1}, lambda t: t.priority == 1),
        ({"reference_type": "REQUEST", "reference_id": "buy-1"}, lambda t: t.reference_id == "buy-1"),
        ({"credits_available_gt": 6.0}, lambda t: Decimal(t.credits_available or "0") > 6),
        ({"expiry_date_after": "2030-01-01T00:00:00Z"},
         lambda t: t.expiry_date is not None and t.expiry_date > datetime(2030, 1, 1, tzinfo=UTC)),
        ({"start_time": middle.isoformat()}, lambda t: t.created_at >= middle),
        ({"status": "published"}, lambda t: True),
    ]
    for params, rule in checks:
        expected = [t.id for t in everything if rule(t)]
        listed = sdk.wallets.get_wallet_transactions(id_path_parameter=wallet.id, limit=100, **params)
        assert ids(listed.items) == expected, params
        oldest_first = sdk.wallets.get_wallet_transactions(id_path_parameter=wallet.id, limit=100, order="asc",
                                                           **params)
        assert ids(oldest_first.items) == expected[::-1], params
    search_params = [({"type_": "credit"}, lambda t: t.type == "credit"),
                     ({"transaction_reason": "PURCHASED_CREDIT_DIRECT", "priority": 1},
                      lambda t: t.transaction_reason == "PURCHASED_CREDIT_DIRECT" and t.priority == 1),
                     ({"start_time": middle}, lambda t: t.created_at >= middle)]
    for params, rule in search_params:
        found = sdk.wallets.query_wallet_transaction(id=wallet.id, limit=100, **params)
        assert ids(found.items) == [t.id for t in everything if rule(t)], params
        assert found.pagination is not None and found.pagination.total == len(found.items or [])
    with pytest.raises((ErrorResponse, FlexpriceDefaultError)) as refused:
        sdk.wallets.get_wallet_transactions(id_path_parameter=wallet.id, expand="customer")
    assert "400" in str(refused.value) or getattr(refused.value, "status_code", None) == 400
    with pytest.raises((ErrorResponse, FlexpriceDefaultError)):
        sdk.wallets.query_wallet_transaction(id=wallet.id, filters=[{"field": "amount", "operator": "gt",
                                                                     "data_type": "number", "value": {"number": 1}}])


def test_events_read_back(sdk: Flexprice) -> None:
    customer = "cust_sdk_events"
    sent = [{"event_name": "api_call" if n % 2 else "login", "external_customer_id": customer,
             "event_id": f"sdk-read-{n}", "timestamp": f"2026-03-0{n + 1}T10:00:00Z", "properties": {"n": str(n)}}
            for n in range(5)]
    sdk.events.ingest_events_bulk(events=sent)
    listed = sdk.events.list_raw_events(external_customer_id=customer, page_size=100)
    assert [e.id for e in listed.events or []] == [e["event_id"] for e in reversed(sent)]
    logins = sdk.events.list_raw_events(external_customer_id=customer, event_name="login",
                                        start_time=datetime(2026, 3, 2, tzinfo=UTC))
    assert [e.id for e in logins.events or []] == ["sdk-read-4", "sdk-read-2"]
    deadline = time.monotonic() + 10
    while True:
        found = sdk.events.get_event(id="sdk-read-3", http_headers={"x-external-customer-id": customer})
        assert found.event is not None and found.event.event_name == "api_call"
        assert found.event.properties == {"n": "3"} and found.event.external_customer_id == customer
        if found.status == "processed" or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # polling the projector's progress, bounded by the deadline
    assert found.status == "processed"
    with pytest.raises((ErrorResponse, FlexpriceDefaultError)):
        sdk.events.get_event(id="sdk-read-3")  # no customer scope: a 404 saying so, never a scan of every customer
