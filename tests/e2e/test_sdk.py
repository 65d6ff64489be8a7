"""The official flexprice SDK (2.1.20), used exactly as a customer would, against `tally dev` in its own process."""

import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from flexprice import Flexprice
from flexprice.models import AlertSettingsTypedDict, CreditBreakdown, TopUpWalletResponse, WalletBalanceResponse
from flexprice.models.errors import ErrorResponse, FlexpriceDefaultError, FlexpriceError

from tests.support.dev_server import ENVIRONMENT, KEY, TENANT, DevServer

# flexprice 2.1.20 types alert thresholds (and auto top-up threshold/amount) as numbers; later SDK releases type
# them as strings. The spec (wallet-balance.openapi.yaml, types.AlertThreshold.threshold: number) says number,
# and the spec wins: tally sends and accepts numbers.
ALERTS: AlertSettingsTypedDict = {
    "alert_enabled": True, "critical": {"threshold": 5, "condition": "below"},
    "warning": {"threshold": 20, "condition": "below"},
}
FOLD_TIMEOUT = 10.0


def fields(model: Any, names: list[str]) -> dict[str, Any]:
    return {name: getattr(model, name) for name in names}


def test_top_ups_with_a_retry_give_an_exact_balance(sdk: Flexprice) -> None:
    wallet = sdk.wallets.create_wallet(customer_id="cust_sdk_topup", currency="USD", conversion_rate="2",
                                       alert_settings=ALERTS)
    assert wallet.id is not None
    assert (wallet.credit_balance, wallet.balance, wallet.wallet_status) == ("0", "0", "active")
    assert wallet.alert_state == "in_alarm"  # 0 credits is at or below the critical threshold of 5

    wallet_id = wallet.id

    def purchase() -> TopUpWalletResponse:
        return sdk.wallets.top_up_wallet(id=wallet_id, transaction_reason="PURCHASED_CREDIT_DIRECT",
                                         credits_to_add="10", idempotency_key="order-42")

    first = purchase()
    retry = purchase()  # the client's retry: same key, same body
    free = sdk.wallets.top_up_wallet(id=wallet.id, transaction_reason="FREE_CREDIT_GRANT", credits_to_add="2.5",
                                     description="welcome credits")

    paid_tx = first.wallet_transaction
    assert paid_tx is not None and first.wallet is not None
    assert fields(paid_tx, ["type", "transaction_reason", "transaction_status", "credit_amount", "amount",
                            "credit_balance_before", "credit_balance_after", "idempotency_key", "wallet_id"]) == {
        "type": "credit", "transaction_reason": "PURCHASED_CREDIT_DIRECT", "transaction_status": "completed",
        "credit_amount": "10", "amount": "20", "credit_balance_before": "0", "credit_balance_after": "10",
        "idempotency_key": "order-42", "wallet_id": wallet.id,
    }
    assert first.wallet.credit_balance == "10"
    assert retry.wallet_transaction == paid_tx, "a retried top-up must return the original transaction"
    assert retry.wallet is not None and retry.wallet.credit_balance == "10", "a retried top-up must add nothing"
    free_tx = free.wallet_transaction
    assert free_tx is not None and free_tx.id != paid_tx.id
    assert fields(free_tx, ["transaction_reason", "credit_amount", "amount", "credit_balance_before",
                            "credit_balance_after"]) == {
        "transaction_reason": "FREE_CREDIT_GRANT", "credit_amount": "2.5", "amount": "5",
        "credit_balance_before": "10", "credit_balance_after": "12.5",
    }

    balance = sdk.wallets.get_wallet_balance(id=wallet.id, expand="credits_available_breakdown")
    assert isinstance(balance, WalletBalanceResponse)
    assert fields(balance, [
        "id", "customer_id", "tenant_id", "environment_id", "currency", "wallet_type", "wallet_status", "status",
        "conversion_rate", "topup_conversion_rate", "credit_balance", "balance", "real_time_balance",
        "real_time_credit_balance", "current_period_usage", "unpaid_invoices_amount", "alert_state",
        "credits_available_breakdown",
    ]) == {
        "id": wallet.id, "customer_id": "cust_sdk_topup", "tenant_id": TENANT, "environment_id": ENVIRONMENT,
        "currency": "usd",  # stored lower-case, as Flexprice does
        "wallet_type": "PRE_PAID", "wallet_status": "active", "status": "published",
        "conversion_rate": "2", "topup_conversion_rate": "2",
        "credit_balance": "12.5", "balance": "25",  # balance = credits * conversion_rate
        "real_time_balance": "25", "real_time_credit_balance": "12.5",  # no usage, no unpaid invoices
        "current_period_usage": "0", "unpaid_invoices_amount": "0",
        "alert_state": "warning",  # 12.5 is below the warning threshold (20), above the critical one (5)
        "credits_available_breakdown": CreditBreakdown(free="2.5", purchased="10"),
    }
    assert balance.alert_settings is not None and balance.alert_settings.critical is not None
    assert (balance.alert_settings.critical.threshold, balance.alert_settings.critical.condition) == (5, "below")
    assert isinstance(balance.balance_updated_at, datetime) and balance.balance_updated_at.tzinfo is not None
    assert balance.created_at is not None and balance.balance_updated_at >= balance.created_at

    plain = sdk.wallets.get_wallet_balance(id=wallet.id)
    assert plain.credits_available_breakdown is None, "the breakdown is only sent when expanded"
    assert (plain.credit_balance, plain.real_time_balance) == ("12.5", "25")

    history = sdk.wallets.get_wallet_transactions(id_path_parameter=wallet.id)
    assert history.pagination is not None and history.pagination.total == 2, "the retry must not be a transaction"
    assert [(t.id, t.credit_amount) for t in history.items or []] == [(free_tx.id, "2.5"), (paid_tx.id, "10")]


def test_get_update_and_terminate(sdk: Flexprice) -> None:
    # create_wallet in 2.1.20 takes no `name`; the update below sets one
    created = sdk.wallets.create_wallet(customer_id="cust_sdk_lifecycle", currency="EUR", conversion_rate="0.5",
                                        description="prepaid", metadata={"plan": "pro"})
    assert created.id is not None
    sdk.wallets.top_up_wallet(id=created.id, transaction_reason="PURCHASED_CREDIT_DIRECT", credits_to_add="8")

    got = sdk.wallets.get_wallet(id=created.id)
    assert fields(got, ["id", "customer_id", "currency", "description", "metadata", "credit_balance", "balance",
                        "alert_state"]) == {
        "id": created.id, "customer_id": "cust_sdk_lifecycle", "currency": "eur", "description": "prepaid",
        "metadata": {"plan": "pro"}, "credit_balance": "8", "balance": "4", "alert_state": "ok",
    }

    updated = sdk.wallets.update_wallet(id=created.id, name="renamed", description="for invoices",
                                        metadata={"plan": "enterprise"},
                                        alert_settings={"alert_enabled": True,
                                                        "critical": {"threshold": 50, "condition": "below"}})
    assert fields(updated, ["name", "description", "metadata", "credit_balance", "alert_state"]) == {
        "name": "renamed", "description": "for invoices", "metadata": {"plan": "enterprise"},
        "credit_balance": "8", "alert_state": "in_alarm",  # 8 credits is below the new critical threshold of 50
    }
    after_update = sdk.wallets.get_wallet_balance(id=created.id)
    assert (after_update.name, after_update.alert_state, after_update.real_time_credit_balance) == (
        "renamed", "in_alarm", "8")
    assert updated.updated_at is not None and created.updated_at is not None
    assert updated.updated_at > created.updated_at

    terminated = sdk.wallets.terminate_wallet(id=created.id)
    assert (terminated.wallet_status, terminated.credit_balance, terminated.balance) == ("closed", "0", "0")
    final = sdk.wallets.get_wallet_balance(id=created.id, expand="credits_available_breakdown")
    assert fields(final, ["wallet_status", "credit_balance", "balance", "real_time_balance",
                          "real_time_credit_balance", "credits_available_breakdown"]) == {
        "wallet_status": "closed", "credit_balance": "0", "balance": "0", "real_time_balance": "0",
        "real_time_credit_balance": "0", "credits_available_breakdown": CreditBreakdown(free="0", purchased="0"),
    }
    newest = sdk.wallets.get_wallet_transactions(id_path_parameter=created.id, limit=1).items
    assert newest is not None and len(newest) == 1
    closing = newest[0]
    assert fields(closing, ["type", "transaction_reason", "credit_amount", "credit_balance_after"]) == {
        "type": "debit", "transaction_reason": "WALLET_TERMINATION", "credit_amount": "8", "credit_balance_after": "0",
    }
    with pytest.raises(ErrorResponse) as refused:
        sdk.wallets.top_up_wallet(id=created.id, transaction_reason="PURCHASED_CREDIT_DIRECT", credits_to_add="1")
    assert (refused.value.status_code, refused.value.data.code) == (400, "invalid_operation")


def test_an_unknown_wallet_is_a_404_error_response(sdk: Flexprice) -> None:
    with pytest.raises(ErrorResponse) as balance:
        sdk.wallets.get_wallet_balance(id="wallet_does_not_exist")
    with pytest.raises(ErrorResponse) as wallet:
        sdk.wallets.get_wallet(id="wallet_does_not_exist")
    for raised in (balance.value, wallet.value):
        assert raised.status_code == 404
        assert (raised.data.code, raised.data.http_status_code) == ("not_found", 404)
        assert raised.data.message and "wallet_does_not_exist" in raised.data.message


def test_a_wrong_api_key_is_a_401(tally_dev: DevServer, sdk: Flexprice) -> None:
    wallet = sdk.wallets.create_wallet(customer_id="cust_sdk_auth", currency="USD")
    assert wallet.id is not None
    stranger = Flexprice(server_url=f"{tally_dev.url}/v1", api_key_auth="not-the-key", timeout_ms=10_000)
    with stranger, pytest.raises((ErrorResponse, FlexpriceDefaultError)) as denied:
        stranger.wallets.get_wallet_balance(id=wallet.id)
    error = denied.value
    assert isinstance(error, FlexpriceError) and error.status_code == 401
    body = error.raw_response.json()  # 2.1.20 types 401 as the default error, so read the wire body
    assert (body["code"], body["http_status_code"]) == ("permission_denied", 401)


def test_the_embedded_projector_folds_what_the_sdk_wrote(tally_dev: DevServer, sdk: Flexprice) -> None:
    """`tally dev` runs the projector beside the API: a cached read catches up to the exact one (polled)."""
    wallet = sdk.wallets.create_wallet(customer_id="cust_sdk_cache", currency="USD", conversion_rate="4")
    assert wallet.id is not None
    sdk.wallets.top_up_wallet(id=wallet.id, transaction_reason="PURCHASED_CREDIT_DIRECT", credits_to_add="3")
    url = f"{tally_dev.url}/v1/wallets/{wallet.id}/balance/real-time"
    headers = {"x-api-key": KEY}
    before_fold = httpx.get(url, headers=headers, timeout=5).json()
    assert (before_fold["credit_balance"], before_fold["is_cached_fallback"]) == ("3", False)  # exact at once
    deadline = time.monotonic() + FOLD_TIMEOUT
    while True:
        cached = httpx.get(url, params={"from_cache": "true"}, headers=headers, timeout=5).json()
        if cached.get("is_cached_fallback") and cached["credit_balance"] == "3":
            break
        assert time.monotonic() < deadline, f"snapshot never caught up: {cached}\n{tally_dev.log_tail()}"
        time.sleep(0.02)
    exact = httpx.get(url, headers=headers, timeout=5).json()  # after the fold: both reflect the same snapshot
    assert exact.pop("is_cached_fallback") is False
    cached.pop("is_cached_fallback")
    assert cached == exact
    assert (cached["credit_balance"], cached["balance"]) == ("3", "12")
