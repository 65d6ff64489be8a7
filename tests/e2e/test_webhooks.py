"""Webhooks end to end: `tally dev` in its own process delivers alert transitions to a real local HTTP receiver.

The receiver checks every Standard Webhooks signature itself (HMAC-SHA256 over "id.timestamp.body" with the
base64-decoded whsec_ secret), fails the first attempts of each message, and then accepts: each alert arrives,
under one webhook-id across its retries, and the delivery API says how many attempts it took. An endpoint that
always fails is dead after the maximum number of attempts.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import httpx
import pytest

from store.connect import connect_sync
from store.keys import Keys
from tests.support.dev_server import (
    ENVIRONMENT,
    KEY,
    PARTITIONS,
    TENANT,
    DevServer,
    DevServerFailed,
    dev_server,
)
from tests.support.redis_cluster import flush_store
from tests.support.webhook_receiver import Receiver, Route, verify_signature, webhook_receiver

FAILURES = 2  # the flaky endpoint answers 500 to the first two attempts of every message
MAX_ATTEMPTS = 4
BACKOFF_BASE_MS = 50
FLAKY_SECRET = "whsec_" + base64.b64encode(b"flaky-endpoint-secret-0123456789").decode()
DEAD_SECRET = "whsec_" + base64.b64encode(b"dead-endpoint-secret-9876543210xy").decode()
ALERTS = ["wallet.ongoing_balance.dropped", "wallet.ongoing_balance.recovered"]
DEADLINE = 30.0


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    routes = {"/flaky": Route(FLAKY_SECRET, fail_first=FAILURES), "/dead": Route(DEAD_SECRET, fail_first=None)}
    with webhook_receiver(routes) as running:
        yield running


@pytest.fixture(scope="module")
def server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    flush_store(redis_url)
    try:
        with dev_server(redis_url, tmp_path_factory.mktemp("tally-dev-webhooks"),
                              webhook_backoff_base_ms=str(BACKOFF_BASE_MS), webhook_max_attempts=str(MAX_ATTEMPTS),
                              block_ms="20", log_level="WARNING") as running:
            yield running
    except DevServerFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def client(server: DevServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/v1", headers={"x-api-key": KEY}, timeout=10) as http:
        yield http


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def wait_deliveries(client: httpx.Client, count: int) -> list[dict[str, Any]]:
    """Poll the delivery API until `count` deliveries exist and none is pending (no fixed sleep)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        items: list[dict[str, Any]] = ok(client.get("/webhooks/deliveries", params={"limit": 500}))["items"]
        if len(items) >= count and all(d["status"] != "pending" for d in items):
            return items
        assert time.monotonic() < deadline, f"deliveries not settled in {DEADLINE}s: {items}"
        time.sleep(0.05)


def test_alerts_arrive_signed_once_per_webhook_id_through_retries_and_a_failing_endpoint_ends_dead(
    client: httpx.Client, receiver: Receiver, server: DevServer
) -> None:
    # tally's own payload format (the notice as the stream holds it); Flexprice's is tested in test_webhooks_flexprice
    flaky = ok(client.post("/webhooks/endpoints", json={"url": receiver.url("/flaky"), "secret": FLAKY_SECRET,
                                                        "event_types": ALERTS, "payload_format": "tally"}), 201)
    dead = ok(client.post("/webhooks/endpoints", json={"url": receiver.url("/dead"), "secret": DEAD_SECRET,
                                                       "event_types": ALERTS[:1], "payload_format": "tally"}), 201)
    assert (flaky["secret"], dead["secret"]) == (FLAKY_SECRET, DEAD_SECRET)

    quiet = ok(client.post("/wallets", json={"customer_id": "cust_quiet", "currency": "USD",
                                             "initial_credits_to_load": "100",
                                             "alert_settings": {"alert_enabled": True,
                                                                "critical": {"threshold": 10, "condition": "below"}}}))
    assert quiet["alert_state"] == "ok"  # created with its credits: no dropped/recovered pair at creation
    wallet = ok(client.post("/wallets", json={"customer_id": "cust_hooks", "currency": "USD",
                                              "alert_settings": {"alert_enabled": True,
                                                                 "critical": {"threshold": 10, "condition": "below"}}}))
    wallet_id = wallet["id"]
    assert wallet["alert_state"] == "in_alarm"  # a new wallet holds 0 credits
    ok(client.post(f"/wallets/{wallet_id}/top-up", json={"transaction_reason": "PURCHASED_CREDIT_DIRECT",
                                                         "credits_to_add": "100"}))
    ok(client.post(f"/wallets/{wallet_id}/debit", json={"credits": "95"}))
    ok(client.post(f"/wallets/{wallet_id}/top-up", json={"transaction_reason": "PURCHASED_CREDIT_DIRECT",
                                                         "credits_to_add": "50"}))

    deliveries = wait_deliveries(client, 6)
    by_endpoint = {e: [d for d in deliveries if d["endpoint_id"] == e] for e in (flaky["id"], dead["id"])}
    assert len(deliveries) == 6, server.log_tail()
    assert {json.loads(d["payload"])["wallet_id"] for d in deliveries} == {wallet_id}

    # The flaky endpoint: four alerts, each delivered on attempt FAILURES + 1 under one webhook-id.
    delivered = sorted(by_endpoint[flaky["id"]], key=lambda d: json.loads(d["payload"])["position"])
    assert [(d["status"], d["attempts"], d["last_status"]) for d in delivered] == [("delivered", FAILURES + 1, 200)] * 4
    payloads = [json.loads(d["payload"]) for d in delivered]
    assert [(p["event_type"], p["wallet_id"], p["balance"]) for p in payloads] == [
        ("wallet.ongoing_balance.dropped", wallet_id, "0"), ("wallet.ongoing_balance.recovered", wallet_id, "100"),
        ("wallet.ongoing_balance.dropped", wallet_id, "5"), ("wallet.ongoing_balance.recovered", wallet_id, "55"),
    ]
    assert {(p["tenant_id"], p["environment_id"], p["customer_id"]) for p in payloads} == {
        (TENANT, ENVIRONMENT, "cust_hooks")}
    requests = receiver.attempts("/flaky")
    assert sorted(requests) == sorted(d["id"] for d in delivered)  # webhook-id is the delivery id
    for delivery in delivered:
        tries = requests[delivery["id"]]
        assert [r.status for r in tries] == [500] * FAILURES + [200]
        assert all(r.signature_valid for r in tries)
        assert {r.body for r in tries} == {delivery["payload"].encode()}  # the same message every time
        for attempt, (earlier, later) in enumerate(pairwise(tries), start=1):
            backoff = BACKOFF_BASE_MS * 2 ** (attempt - 1) * 0.5 / 1000  # the least jitter can make it
            assert later.at - earlier.at >= backoff - 0.005, f"attempt {attempt + 1} came too early"

    # The dead endpoint: only the two drops match its filter; each is tried MAX_ATTEMPTS times, then dead.
    dead_ones = by_endpoint[dead["id"]]
    assert sorted((d["event_type"], d["status"], d["attempts"], d["last_status"]) for d in dead_ones) == [
        ("wallet.ongoing_balance.dropped", "dead", MAX_ATTEMPTS, 500)] * 2
    dead_requests = receiver.attempts("/dead")
    assert sorted(dead_requests) == sorted(d["id"] for d in dead_ones)
    assert all(len(tries) == MAX_ATTEMPTS and all(r.signature_valid and r.status == 500 for r in tries)
               for tries in dead_requests.values())
    assert not set(dead_requests) & set(requests), "a webhook-id is per message and endpoint"

    # Nothing else reached the receiver, and nothing more can arrive: every notice is queued (the sender's checkpoints
    # are at the alerts streams' heads) and the queue is empty (no retry pending, no attempt in progress).
    wait_sender_idle(server.redis_url)
    assert len(receiver.received) == 4 * (FAILURES + 1) + 2 * MAX_ATTEMPTS


def wait_sender_idle(redis_url: str) -> None:
    """Poll until no further request can be sent without a new notice: checkpoints at heads, an empty queue."""
    keys, client = Keys(PARTITIONS), connect_sync(redis_url, decode_responses=True)
    deadline = time.monotonic() + DEADLINE
    while True:
        heads = [client.xrevrange(keys.notices(p), count=1) for p in range(PARTITIONS)]
        behind = [p for p, head in enumerate(heads) if head and client.get(keys.webhook_checkpoint(p)) != head[0][0]]
        queued = client.zcard(keys.webhook_due())
        if not behind and queued == 0:
            return
        assert time.monotonic() < deadline, f"sender not idle in {DEADLINE}s: partitions {behind}, {queued} queued"
        time.sleep(0.02)


def test_the_receiver_rejects_a_signature_made_with_another_secret() -> None:
    """The receiver's check is not vacuous: the same message signed with the other secret does not verify."""
    body, message_id, timestamp = b'{"a":1}', "msg_x", str(int(time.time()))
    key = base64.b64decode(DEAD_SECRET.removeprefix("whsec_"))
    signed = base64.b64encode(hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    header = "v1," + signed.decode()
    assert verify_signature(DEAD_SECRET, message_id, timestamp, body, header)
    assert not verify_signature(FLAKY_SECRET, message_id, timestamp, body, header)
    assert not verify_signature(DEAD_SECRET, message_id, timestamp, body + b" ", header)
    assert not verify_signature(DEAD_SECRET, message_id, str(int(timestamp) - 3600), body, header)
