"""Wallet search and customer-wallet lookups through the official SDK (2.1.20) only, against `tally dev`:
query_wallet with each filter (checked against the unfiltered answer filtered by the same rule) and
get_customer_wallets by id and by lookup key with real-time balances."""

import time

import httpx
import pytest
from flexprice import Flexprice
from flexprice.models import AlertSettingsTypedDict, WalletResponse
from flexprice.models.errors import ErrorResponse, FlexpriceDefaultError, FlexpriceError

from tests.support.dev_server import KEY, DevServer

ALERTS: AlertSettingsTypedDict = {"alert_enabled": True, "critical": {"threshold": 1, "condition": "below"}}
FOLD_TIMEOUT = 10.0
PRICE = {"event_name": "sdk_search_calls", "currency": "USD", "aggregation": {"type": "COUNT"},
         "billing_model": "FLAT_FEE", "amount": "3"}


def _snapshot_with(sdk: Flexprice, wallet_id: str) -> list[WalletResponse]:
    """x-max-live (header, and the SDK's `minus`): a snapshot at most an hour behind answers; it holds the wallet
    once the projector has folded its creation (polled, with a deadline)."""
    deadline = time.monotonic() + FOLD_TIMEOUT
    while True:
        live = sdk.wallets.get_customer_wallets(lookup_key="sdk-lookup", include_real_time_balance=True,
                                                minus=3600, http_headers={"x-max-live": "3600"})
        if ids(live) == [wallet_id] or time.monotonic() > deadline:
            return live
        time.sleep(0.01)


def ids(wallets: list[WalletResponse] | None) -> list[str]:
    return [w.id or "" for w in wallets or []]


def alerting(wallet: WalletResponse) -> bool:
    return bool(wallet.alert_settings is not None and wallet.alert_settings.alert_enabled)


def test_query_wallet_honours_each_filter(sdk: Flexprice) -> None:
    made = [sdk.wallets.create_wallet(customer_id=f"sdk-search-{n}", currency="USD", initial_credits_to_load=str(n + 1),
                                      alert_settings=ALERTS if n % 2 else None) for n in range(5)]
    sdk.wallets.terminate_wallet(id=made[3].id or "")
    everything = sdk.wallets.query_wallet(limit=500)
    items = everything.items or []
    assert ids(items) == ids(made)[::-1] and everything.pagination is not None and everything.pagination.total == 5
    for status in ("active", "closed"):
        assert ids(sdk.wallets.query_wallet(status=status).items) == [w.id for w in items if w.wallet_status == status]
    for enabled in (True, False):
        assert ids(sdk.wallets.query_wallet(alert_enabled=enabled).items) == [w.id for w in items
                                                                             if alerting(w) == enabled]
    named = sdk.wallets.query_wallet(wallet_ids=[made[0].id or "", made[3].id or ""], status="active")
    assert ids(named.items) == [made[0].id]
    page = sdk.wallets.query_wallet(limit=2, offset=1, order="asc", sort="created_at")
    assert ids(page.items) == ids(made)[1:3] and page.pagination is not None and page.pagination.total == 5
    expanded = sdk.wallets.query_wallet(wallet_ids=[made[4].id or ""], expand="credits_available_breakdown")
    breakdown = (expanded.items or [])[0].credits_available_breakdown
    assert breakdown is not None and (breakdown.free, breakdown.purchased) == ("5", "0")
    with pytest.raises((ErrorResponse, FlexpriceError, FlexpriceDefaultError)):
        sdk.wallets.query_wallet(sort="updated_at")  # an order tally does not keep: a 400, never ignored


def test_get_customer_wallets_by_id_and_by_lookup_key_with_real_time_balances(
    tally_dev: DevServer, sdk: Flexprice
) -> None:
    with httpx.Client(base_url=f"{tally_dev.url}/v1", headers={"x-api-key": KEY}, timeout=10) as client:
        assert client.post("/prices", json=PRICE).status_code == 201  # the SDK's price API is plan-based
    customer = sdk.customers.create_customer(external_id="sdk-lookup")
    wallet = sdk.wallets.create_wallet(customer_id=customer.id, currency="USD", initial_credits_to_load="20")
    for n in range(2):
        sdk.events.ingest_event(event_name="sdk_search_calls", external_customer_id="sdk-lookup", event_id=f"lk-{n}")
    by_id = sdk.wallets.get_customer_wallets(id=customer.id, include_real_time_balance=True)
    by_key = sdk.wallets.get_customer_wallets(lookup_key="sdk-lookup", include_real_time_balance=True)
    held = sdk.wallets.get_customer_wallets(lookup_key="sdk-lookup")
    live = _snapshot_with(sdk, wallet.id or "")
    balance = sdk.wallets.get_wallet_balance(id=wallet.id or "")
    assert ids(by_id) == ids(by_key) == ids(held) == ids(live) == [wallet.id]
    assert by_id[0].credit_balance == by_key[0].credit_balance == balance.real_time_credit_balance == "14"
    assert held[0].credit_balance == "20"  # without real-time balances: the credits held
    assert live[0].customer_id == customer.id
    assert sdk.wallets.get_customer_wallets(lookup_key="nobody-here") == []
