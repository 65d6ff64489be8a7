"""Webhook delivery under `tally dev` outlives its Redis: the redis-server the dev process uses is killed (SIGKILL,
every connection dropped) and started again on the same port, and a notice produced after that still reaches a local
receiver, with no restart of `tally dev` (its workers retry under the shared runtime, projector/runtime.py)."""

import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.dev_server import KEY, dev_server
from tests.support.redis_server import RedisServer
from tests.support.webhook_receiver import Receiver, Route, webhook_receiver

SECRET = "whsec_" + base64.b64encode(b"resume-endpoint-secret-012345678").decode()
DEADLINE = 60.0


def until(check: Callable[[], Any], what: str, log: Path) -> Any:
    deadline = time.monotonic() + DEADLINE
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} within {DEADLINE}s; tally dev log:\n{log.read_text()[-4000:]}"
        time.sleep(0.05)


def delivered_notices(receiver: Receiver, after: float) -> set[str]:
    """The wallet.transaction.created notices (as JSON) accepted by the receiver after `after` (time.monotonic())."""
    found = set()
    for attempts in receiver.attempts("/hook").values():
        for attempt in attempts:
            payload = json.loads(attempt.body)
            created = payload.get("event_type") == "wallet.transaction.created"
            if attempt.status == 200 and attempt.at > after and created:
                found.add(json.dumps(payload, sort_keys=True))
    return found


def answers(client: httpx.Client, wallet_id: str) -> bool:
    try:
        return client.get(f"/wallets/{wallet_id}").status_code == 200
    except httpx.TransportError:
        return False


def test_webhook_delivery_resumes_by_itself_after_the_redis_server_is_killed_and_restarted(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    try:
        with webhook_receiver({"/hook": Route(SECRET, fail_first=0)}) as receiver, \
                dev_server(redis_server.url, tmp_path, lease_ttl_ms="1000", block_ms="20",
                           webhook_backoff_base_ms="50") as server, \
                httpx.Client(base_url=f"{server.url}/v1", headers={"x-api-key": KEY}, timeout=10) as client:
            assert client.post("/webhooks/endpoints", json={"url": receiver.url("/hook"),
                                                            "secret": SECRET}).status_code == 201
            wallet = client.post("/wallets", json={"customer_id": "cust_resume", "currency": "USD"}).json()
            top_up = {"transaction_reason": "PURCHASED_CREDIT_DIRECT", "credits_to_add": "7"}
            assert client.post(f"/wallets/{wallet['id']}/top-up", json=top_up).status_code == 200
            until(lambda: delivered_notices(receiver, 0.0), "a first delivery", server.log)

            redis_server.kill()  # every connection of tally dev is dropped mid-use
            killed_at = time.monotonic()
            redis_server.start()  # same port, same AOF
            until(lambda: answers(client, wallet["id"]), "the API answering again", server.log)
            top_up = {"transaction_reason": "PURCHASED_CREDIT_DIRECT", "credits_to_add": "11"}
            assert client.post(f"/wallets/{wallet['id']}/top-up", json=top_up).status_code == 200

            # the top-up of 11 reaches the receiver (a redelivery of the first notice may come too: at least once)
            until(lambda: [n for n in delivered_notices(receiver, killed_at) if '"11"' in n],
                  "a delivery of the notice produced after the restart", server.log)
            os.kill(server.pid, 0)  # tally dev is still the same, running process
    finally:
        redis_server.stop()
