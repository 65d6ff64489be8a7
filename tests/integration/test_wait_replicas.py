"""TALLY_WAIT_REPLICAS: an append is answered only once WAIT confirms that many replicas of the primary that took
it have it; a 503 (ErrorResponse) when they do not in TALLY_WAIT_TIMEOUT_MS. On a cluster with a replica per
primary every append is confirmed, single or bulk; on a server with no replica none can be."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from store.connect import connect
from tests.support.harness import make_settings, running_app
from tests.support.redis_cluster import RedisCluster

ERROR_SHAPE = {"code", "message", "http_status_code", "details"}


@pytest.fixture(scope="module")
def replicated_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cluster = RedisCluster(Path(tmp_path_factory.mktemp("replicated")), replicas=1)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def appends(client: object, customer: str) -> list[int]:
    """A wallet, a top-up and a bulk of usage: the answers' status codes."""
    post = client.post  # type: ignore[attr-defined]
    wallet = await post("/v1/wallets", json={"customer_id": customer, "currency": "USD"})
    if wallet.status_code != 200:
        return [wallet.status_code]
    top_up = await post(f"/v1/wallets/{wallet.json()['id']}/top-up", json={
        "credits_to_add": "5", "transaction_reason": "PURCHASED_CREDIT_DIRECT", "idempotency_key": "k-1"})
    events = [{"event_name": "api_call", "external_customer_id": customer, "event_id": f"e-{n}",
               "properties": {"tokens": "1"}} for n in range(5)]
    bulk = await post("/v1/events/bulk", json={"events": events})
    return [wallet.status_code, top_up.status_code, bulk.status_code]


async def test_without_a_replica_an_append_is_a_503_naming_the_setting(clean_redis: str) -> None:
    settings = make_settings(wait_replicas=1, wait_timeout_ms=50)
    async with running_app(clean_redis, settings=settings, projector=False) as client:
        refused = await client.post("/v1/wallets", json={"customer_id": "cust_w", "currency": "USD"})
    assert refused.status_code == 503 and set(refused.json()) == ERROR_SHAPE, refused.text
    assert "TALLY_WAIT_REPLICAS" in refused.json()["message"]


async def test_on_a_cluster_with_a_replica_per_primary_every_append_is_confirmed(
    replicated_cluster: RedisCluster,
) -> None:
    settings = make_settings(wait_replicas=1, wait_timeout_ms=2000)
    async with running_app(None, settings=settings, projector=False,
                           connect=lambda: connect(replicated_cluster.url)) as client:
        answers = [await appends(client, f"cust_{n}") for n in range(6)]
    assert answers == [[200, 200, 202]] * 6
    replica_ports = [p for p in replicated_cluster.ports if p not in replicated_cluster.primaries()]
    assert replica_ports and all(redis.Redis(port=p).info("replication")["role"] == "slave" for p in replica_ports)
