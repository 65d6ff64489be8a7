"""A receiver written for Flexprice works against tally unchanged: `tally dev` delivers Flexprice's event names and
payload shapes by default, and the handlers here parse each body with the Flexprice SDK's own webhook models
(`WebhookDtoWalletWebhookPayload`, `WebhookDtoTransactionWebhookPayload`), dispatching on `event_type` as a
Flexprice receiver does. tally's own facts ride along under `tally`."""

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flexprice.models import WebhookDtoTransactionWebhookPayload, WebhookDtoWalletWebhookPayload

from tests.support.dev_server import KEY, dev_server
from tests.support.webhook_receiver import Receiver, Route, webhook_receiver

SECRET = "whsec_" + base64.b64encode(b"flexprice-receiver-secret-012345").decode()
DEADLINE = 30.0
ALERTS = {"alert_enabled": True, "critical": {"threshold": 10, "condition": "below"}}


class FlexpriceReceiver:
    """Handlers by Flexprice event name, each parsing the body with the SDK's model for it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        wallet: Callable[[bytes], Any] = WebhookDtoWalletWebhookPayload.model_validate_json
        transaction: Callable[[bytes], Any] = WebhookDtoTransactionWebhookPayload.model_validate_json
        self.handlers = {
            "wallet.created": wallet, "wallet.updated": wallet, "wallet.terminated": wallet,
            "wallet.ongoing_balance.dropped": wallet, "wallet.ongoing_balance.recovered": wallet,
            "wallet.credit_balance.dropped": wallet, "wallet.credit_balance.recovered": wallet,
            "wallet.transaction.created": transaction, "wallet.transaction.updated": transaction,
        }

    def handle(self, body: bytes) -> None:
        event_type = json.loads(body)["event_type"]
        if event_type in self.handlers:  # a Flexprice receiver ignores names it does not know
            self.seen.append((event_type, self.handlers[event_type](body)))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver({"/hook": Route(SECRET, fail_first=0)}) as running:
        yield running


def delivered(receiver: Receiver) -> list[bytes]:
    """Accepted bodies, one per webhook-id, in the order of the events that caused them (deliveries run
    concurrently, so they may arrive in another)."""
    bodies = [next(a.body for a in tries if a.status == 200) for tries in receiver.attempts("/hook").values()
              if any(a.status == 200 for a in tries)]
    return sorted(bodies, key=lambda body: tuple(int(p) for p in json.loads(body)["tally"]["position"].split("-")))


def test_a_flexprice_receiver_gets_flexprice_names_and_shapes(receiver: Receiver, redis_url: str,
                                                              tmp_path: Path) -> None:
    with dev_server(redis_url, tmp_path, block_ms="20", webhook_backoff_base_ms="50") as server, \
            httpx.Client(base_url=f"{server.url}/v1", headers={"x-api-key": KEY}, timeout=10) as client:
        endpoint = client.post("/webhooks/endpoints", json={"url": receiver.url("/hook"), "secret": SECRET})
        assert endpoint.status_code == 201 and endpoint.json()["payload_format"] == "flexprice", endpoint.text
        wallet = client.post("/wallets", json={"customer_id": "cust_fx_hooks", "currency": "USD",
                                               "alert_settings": ALERTS}).json()
        wallet_id = wallet["id"]
        steps = [
            client.post(f"/wallets/{wallet_id}/top-up", json={"transaction_reason": "PURCHASED_CREDIT_DIRECT",
                                                              "credits_to_add": "100"}),
            client.post(f"/wallets/{wallet_id}/debit", json={"credits": "95"}),
            client.put(f"/wallets/{wallet_id}", json={"name": "Renamed"}),
            client.post(f"/wallets/{wallet_id}/terminate"),
        ]
        assert all(s.status_code == 200 for s in steps), [s.text for s in steps]
        flexprice = FlexpriceReceiver()
        deadline = time.monotonic() + DEADLINE
        expected = {"wallet.created": 1, "wallet.updated": 1, "wallet.terminated": 1, "wallet.transaction.created": 3,
                    "wallet.ongoing_balance.dropped": 2, "wallet.ongoing_balance.recovered": 1}
        while any(sum(n == name for n, _ in flexprice.seen) < count for name, count in expected.items()):
            assert time.monotonic() < deadline, f"not delivered: {flexprice.seen}\n{server.log_tail()}"
            time.sleep(0.05)
            flexprice.seen.clear()
            bodies = delivered(receiver)  # names and positions below come from this one read of the receiver
            for body in bodies:
                flexprice.handle(body)
    names = [name for name, _ in flexprice.seen]
    positions = [json.loads(body)["tally"]["position"] for body in bodies]
    order = {json.loads(body)["event_type"]: json.loads(body)["tally"]["position"] for body in bodies}
    assert positions[0] == order["wallet.created"] and positions[-1] == order["wallet.terminated"], names
    assert {name: names.count(name) for name in expected} == expected, names  # each once: dropped at 0 and at 5
    assert all(parsed.wallet is not None and parsed.wallet.id == wallet_id for _, parsed in flexprice.seen)

    dropped = [p for name, p in flexprice.seen if name == "wallet.ongoing_balance.dropped"][-1]
    assert dropped.alert is not None
    assert (dropped.alert.state, dropped.alert.alert_type, dropped.alert.current_balance,
            dropped.alert.credit_balance) == ("in_alarm", "low_ongoing_balance", 5.0, 5.0)
    assert dropped.alert.alert_settings is not None and dropped.alert.alert_settings.critical is not None
    assert dropped.alert.alert_settings.critical.threshold == 10.0
    assert dropped.wallet is not None and dropped.wallet.credit_balance == "5"

    created = [p for name, p in flexprice.seen if name == "wallet.transaction.created"]
    debit = next(p.transaction for p in created if p.transaction and p.transaction.type == "debit")
    assert (debit.credit_amount, debit.credit_balance_before, debit.credit_balance_after) == ("95", "100", "5")
    renamed = next(p for name, p in flexprice.seen if name == "wallet.updated")
    assert renamed.wallet is not None and renamed.wallet.name == "Renamed"
    final = next(p for name, p in flexprice.seen if name == "wallet.terminated")
    assert final.wallet is not None and final.wallet.wallet_status == "closed"
    raw = json.loads(next(b for b in delivered(receiver) if b"wallet.ongoing_balance.dropped" in b))
    assert set(raw["tally"]) >= {"old_state", "new_state", "balance", "position", "at"}  # tally's additions
