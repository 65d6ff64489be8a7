"""Resources seeded before schemathesis runs, and one neighbour per partition whose cached balance must keep up."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

SEED_CUSTOMER = "cust_schemathesis"
FOLD_TIMEOUT = 10.0


@dataclass(frozen=True)
class Seeds:
    path: dict[str, str]  # path parameter name → a real resource of the caller's tenant
    neighbours: dict[int, str]  # partition → wallet of a customer that schemathesis never names


def _ok(reply: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert reply.status_code == status, f"seeding failed: {reply.status_code} {reply.text}"
    body: dict[str, Any] = reply.json()
    return body


def _wallet(client: httpx.Client, customer: str, credits: str) -> str:
    wallet = _ok(client.post("/v1/wallets", json={"customer_id": customer, "currency": "USD",
                                                  "initial_credits_to_load": credits}))
    wallet_id: str = wallet["id"]
    return wallet_id


def _neighbours(client: httpx.Client, partition_of: Callable[[str], int], partitions: int) -> dict[int, str]:
    found: dict[int, str] = {}
    index = 0
    while len(found) < partitions:
        customer = f"neighbour_{index}"
        index += 1
        if partition_of(customer) not in found:
            found[partition_of(customer)] = _wallet(client, customer, "10")
    return found


def seed_resources(client: httpx.Client, partition_of: Callable[[str], int], partitions: int) -> Seeds:
    wallet_id = _wallet(client, SEED_CUSTOMER, "100")
    pending = _ok(client.post(f"/v1/wallets/{wallet_id}/top-up", json={
        "credits_to_add": "5", "transaction_reason": "PURCHASED_CREDIT_INVOICED"}))
    path = {"wallet_id": wallet_id, "customer_id": SEED_CUSTOMER,
            "transaction_id": pending["wallet_transaction"]["id"]}
    endpoint = client.post("/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hook"})
    if endpoint.status_code == 201:  # a store that refuses loopback receivers has no endpoint to name
        path["endpoint_id"] = endpoint.json()["id"]
    return Seeds(path=path, neighbours=_neighbours(client, partition_of, partitions))


def _caught_up(client: httpx.Client, wallet_id: str, expected: str) -> dict[str, Any] | None:
    """The cached balance, or None once it is the snapshot's and shows `expected` credits."""
    reply = client.get(f"/v1/wallets/{wallet_id}/balance/real-time", params={"from_cache": "true"})
    body: dict[str, Any] = reply.json()
    if reply.status_code == 200 and body["is_cached_fallback"] and body["credit_balance"] == expected:
        return None
    return body


def _top_up(client: httpx.Client, wallet_id: str) -> httpx.Response:
    return client.post(f"/v1/wallets/{wallet_id}/top-up", json={
        "credits_to_add": "1", "transaction_reason": "PURCHASED_CREDIT_DIRECT"})


def _usable(client: httpx.Client, partition: int, wallet_id: str, partition_of: Callable[[str], int]) -> str:
    """The neighbour's wallet, unfrozen, or (terminated) a new wallet of a new customer of the same partition.
    GET /v1/wallets lists every wallet of the tenant, so schemathesis's stateful phase can reach a neighbour and
    freeze or terminate it; the partition must fold all the same."""
    wallet = _ok(client.get(f"/v1/wallets/{wallet_id}"))
    if wallet["wallet_status"] == "frozen":
        _ok(client.post(f"/v1/wallets/{wallet_id}/unfreeze"))
    if wallet["wallet_status"] != "closed":
        return wallet_id
    customer = next(name for name in (f"late_neighbour_{n}" for n in range(10_000)) if partition_of(name) == partition)
    return _wallet(client, customer, "10")


def neighbours_fold(client: httpx.Client, seeds: Seeds, partition_of: Callable[[str], int],
                    timeout: float = FOLD_TIMEOUT) -> dict[int, Any]:
    """Top up each neighbour by one credit and poll its cached balance; what did not catch up, per partition."""
    expected: dict[int, str] = {}
    neighbours = dict(seeds.neighbours)
    for partition, wallet_id in seeds.neighbours.items():
        reply = _top_up(client, wallet_id)
        if reply.status_code == 400 and reply.json()["code"] == "invalid_operation":
            neighbours[partition] = _usable(client, partition, wallet_id, partition_of)
            reply = _top_up(client, neighbours[partition])
        expected[partition] = _ok(reply)["wallet"]["credit_balance"]
    seeds = Seeds(path=seeds.path, neighbours=neighbours)
    deadline = time.monotonic() + timeout
    behind: dict[int, Any] = dict.fromkeys(expected)
    while behind and time.monotonic() < deadline:
        for partition in list(behind):
            seen = _caught_up(client, seeds.neighbours[partition], expected[partition])
            if seen is None:
                del behind[partition]
            else:
                behind[partition] = seen
        time.sleep(0.02)  # a poll interval, not a wait for the projector: the deadline bounds the wait
    return behind
