"""The alert log through the official SDK (2.1.20): `alerts.query_alert_log` finds a wallet's transitions, filtered
by customer, wallet, type and state, once the projector has folded them."""

import time

from flexprice import Flexprice

DEADLINE = 20.0


def test_query_alert_log_finds_the_wallets_transitions(sdk: Flexprice) -> None:
    wallet = sdk.wallets.create_wallet(customer_id="cust_sdk_alerts", currency="USD", alert_settings={
        "alert_enabled": True, "critical": {"threshold": 10, "condition": "below"}})
    assert wallet.id is not None
    sdk.wallets.top_up_wallet(id=wallet.id, transaction_reason="FREE_CREDIT_GRANT", credits_to_add="100")
    deadline = time.monotonic() + DEADLINE
    while True:
        found = sdk.alerts.query_alert_log(entity_id=wallet.id, entity_type="wallet", alert_type="low_ongoing_balance")
        if found.items and len(found.items) == 2:
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    states = [item.alert_status for item in found.items]
    assert states == ["ok", "in_alarm"]  # newest first: recovered by the top-up, in alarm at creation
    assert all(item.entity_id == wallet.id and item.customer_id == "cust_sdk_alerts" for item in found.items)
    in_alarm = sdk.alerts.query_alert_log(customer_id="cust_sdk_alerts", alert_status="in_alarm")
    assert in_alarm.items is not None and {i.alert_type for i in in_alarm.items} == {"low_ongoing_balance",
                                                                                    "low_credit_balance"}
    assert in_alarm.pagination is not None and in_alarm.pagination.total == 2
