"""What a webhook delivers for a notice, in the endpoint's format.

`flexprice` (the default for new endpoints): Flexprice's payloads, so a receiver written for Flexprice works as it
is: `{event_type, wallet, alert: {state, current_balance, credit_balance, alert_type, alert_settings}}` for a
balance alert, `{event_type, transaction, wallet}` for a transaction, `{event_type, wallet}` for a wallet's
creation, update or termination. tally's own facts ride along under `tally` (the exact decimal balance, the old
state, the threshold, the log position and instant), and tally's extra transitions (`.info`, `.warning`, `.ok`)
come in the same shape. `tally`: the notice as the notices stream holds it (endpoints registered before the
format existed keep it)."""

from typing import Any

import msgspec

from domain.notice_shapes import WalletShown
from domain.notices import AnyNotice, BalanceAlert, TransactionCreated, TransactionUpdated, WalletChanged
from domain.settings import AlertSettings, AlertThreshold
from store.webhooks import PayloadFormat

ALERT_TYPES = {"ongoing_balance": "low_ongoing_balance", "credit_balance": "low_credit_balance"}
_json = msgspec.json.Encoder()


def payload(notice: AnyNotice, stored: bytes, payload_format: PayloadFormat) -> str:
    """The body a delivery of `notice` (stored as `stored`) sends to an endpoint taking `payload_format`."""
    if payload_format == "tally":
        return stored.decode()
    return _json.encode(flexprice_payload(notice)).decode()


def flexprice_payload(notice: AnyNotice) -> dict[str, Any]:
    body: dict[str, Any] = {"event_type": notice.event_type, "wallet": wallet_payload(notice)}
    match notice:
        case BalanceAlert():
            body["alert"] = _alert(notice)
            body["tally"] = {"metric": notice.metric, "old_state": notice.old_state, "new_state": notice.new_state,
                             "balance": notice.balance, "threshold": notice.threshold, "position": notice.position,
                             "at": notice.at}
        case TransactionCreated() | TransactionUpdated():
            body["transaction"] = notice.transaction or {"id": notice.transaction_id, "wallet_id": notice.wallet_id}
            body["tally"] = {"position": notice.position, "at": notice.at}
        case WalletChanged():
            body["tally"] = {"position": notice.position, "at": notice.at}
    return body


def wallet_payload(notice: BalanceAlert | TransactionCreated | TransactionUpdated | WalletChanged) -> dict[str, Any]:
    """The wallet as the notice shows it; a notice written before notices carried it names the wallet only."""
    shown: WalletShown | None = notice.wallet
    if shown is None:
        return {"id": notice.wallet_id, "customer_id": notice.customer_id, "tenant_id": notice.tenant_id,
                "environment_id": notice.environment_id}
    wallet: dict[str, Any] = msgspec.to_builtins(shown)
    wallet["alert_settings"] = settings_payload(shown.alert_settings)
    return wallet


def _alert(notice: BalanceAlert) -> dict[str, Any]:
    """Flexprice's alert block: both balances as numbers (the exact decimals are under `tally`)."""
    shown = notice.wallet
    ongoing = shown.real_time_credit_balance if shown else (notice.balance if notice.metric == "ongoing_balance"
                                                             else None)
    credit = shown.credit_balance if shown else (notice.balance if notice.metric == "credit_balance" else None)
    return {"state": notice.new_state, "current_balance": _number(ongoing), "credit_balance": _number(credit),
            "alert_type": ALERT_TYPES.get(notice.metric, notice.metric),
            "alert_settings": settings_payload(shown.alert_settings) if shown else None}


def settings_payload(settings: AlertSettings | None) -> dict[str, Any] | None:
    if settings is None:
        return None
    levels = {"critical": settings.critical, "warning": settings.warning, "info": settings.info}
    return {"alert_enabled": settings.alert_enabled,
            **{name: _threshold(level) for name, level in levels.items() if level is not None}}


def _threshold(threshold: AlertThreshold) -> dict[str, Any]:
    return {"threshold": float(threshold.threshold), "condition": threshold.condition}


def _number(value: str | None) -> float | None:
    return None if value is None else float(value)
