"""Customers through the official SDK (2.1.20) against `tally dev`: created, found by external id and by search,
and a wallet created for the internal id that counts usage the producer sends for the external id."""

import httpx
import pytest
from flexprice import Flexprice
from flexprice.models.errors import ErrorResponse, FlexpriceDefaultError, FlexpriceError

from tests.support.dev_server import KEY, DevServer

PRICE = {"event_name": "sdk_customer_calls", "currency": "USD", "aggregation": {"type": "COUNT"},
         "billing_model": "FLAT_FEE", "amount": "2"}


def test_a_wallet_for_the_internal_id_counts_usage_sent_for_the_external_id(
    tally_dev: DevServer, sdk: Flexprice
) -> None:
    # The SDK's price API is plan-based: tally's rate card is set over HTTP, as in the other SDK suites.
    with httpx.Client(base_url=f"{tally_dev.url}/v1", headers={"x-api-key": KEY}, timeout=10) as client:
        assert client.post("/prices", json=PRICE).status_code == 201
    early = sdk.events.ingest_event(event_name="sdk_customer_calls", external_customer_id="acme-sdk",
                                    event_id="early-1")
    customer = sdk.customers.create_customer(external_id="acme-sdk", name="Acme", email="billing@acme.test",
                                             metadata={"plan": "pro"})
    assert customer.id is not None and customer.id.startswith("cust_")
    wallet = sdk.wallets.create_wallet(customer_id=customer.id, currency="USD", initial_credits_to_load="100")
    for n in range(3):
        sdk.events.ingest_event(event_name="sdk_customer_calls", external_customer_id="acme-sdk",
                                event_id=f"late-{n}")
    assert early["event_id"] == "early-1" and wallet.id is not None
    assert wallet.customer_id == customer.id
    listed = sdk.wallets.get_wallets_by_customer_id(id=customer.id)
    assert [w.id for w in listed] == [wallet.id]
    balance = sdk.wallets.get_wallet_balance(id=wallet.id)
    assert (balance.current_period_usage, balance.real_time_credit_balance) == ("8", "92")  # 4 calls at 2 USD


def test_found_by_id_by_external_id_and_by_search_and_updated(sdk: Flexprice) -> None:
    made = [sdk.customers.create_customer(external_id=f"find-{n}", email=f"{n % 2}@find.test") for n in range(3)]
    by_id = sdk.customers.get_customer(id=made[1].id or "")
    by_external = sdk.customers.get_customer_by_external_id(external_id="find-1")
    by_email = sdk.customers.query_customer(email="0@find.test", order="asc")
    by_ids = sdk.customers.query_customer(customer_ids=[made[0].id or "", made[2].id or ""], limit=1, offset=1)
    updated = sdk.customers.update_customer(id=made[2].id, name="Renamed", address_city="Lisbon")
    assert by_id == by_external and by_id.external_id == "find-1"
    assert [c.external_id for c in by_email.items or []] == ["find-0", "find-2"]
    assert [c.external_id for c in by_ids.items or []] == ["find-0"]  # newest first, the second of two
    assert by_ids.pagination is not None and by_ids.pagination.total == 2
    assert (updated.name, updated.address_city, updated.external_id) == ("Renamed", "Lisbon", "find-2")


def test_a_taken_external_id_and_a_missing_customer_are_errors_and_delete_frees_the_id(sdk: Flexprice) -> None:
    first = sdk.customers.create_customer(external_id="taken-sdk")
    with pytest.raises((ErrorResponse, FlexpriceError, FlexpriceDefaultError)) as taken:
        sdk.customers.create_customer(external_id="taken-sdk")
    assert "409" in str(taken.value) or getattr(taken.value, "status_code", None) == 409
    sdk.customers.delete_customer(id=first.id or "")
    with pytest.raises((ErrorResponse, FlexpriceError, FlexpriceDefaultError)):
        sdk.customers.get_customer(id=first.id or "")
    again = sdk.customers.create_customer(external_id="taken-sdk")
    assert again.id != first.id
