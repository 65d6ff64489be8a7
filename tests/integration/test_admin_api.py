"""Operator routes on a real Redis: only an operator key may verify or scrape /metrics; verify runs as one bounded
background job, off the event loop, so a long fold never stalls a balance read."""

import asyncio
import statistics
import time
from typing import Any

import httpx
from redis.asyncio import Redis

from domain.identity import AccountRef
from store.connect import connect
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from store.verify import verify_accounts
from tests.support.harness import OPERATOR_KEY, OTHER_KEY, PARTITIONS, running_app, wait_folded

BEARER = {"authorization": f"Bearer {OPERATOR_KEY}"}
BIG = AccountRef("tenant_a", "env_a", "cust_big")


async def poll_job(client: httpx.AsyncClient, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = (await client.get(f"/v1/admin/verify/{job_id}", headers=BEARER)).json()
        if job["state"] != "running":
            return job
        assert time.monotonic() < deadline, f"verify job still running after {timeout}s: {job}"
        await asyncio.sleep(0.02)


async def test_tenant_keys_are_forbidden_and_no_key_is_unauthorised_on_operator_routes(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        for method, path in (("POST", "/v1/admin/verify"), ("GET", "/v1/admin/verify/verify_x"), ("GET", "/metrics")):
            for key in ("test-key", OTHER_KEY):
                tenant = await client.request(method, path, headers={"x-api-key": key})
                assert tenant.status_code == 403, (path, tenant.text)
                assert tenant.json()["code"] == "permission_denied"
            anonymous = await client.request(method, path, headers={"x-api-key": ""})
            assert anonymous.status_code == 401, (path, anonymous.text)
            unknown = await client.request(method, path, headers={"authorization": "Bearer nope"})
            assert unknown.status_code == 401
        assert (await client.get("/metrics", headers=BEARER)).status_code == 200
        assert (await client.get("/metrics", headers={"x-api-key": OPERATOR_KEY})).status_code == 200


async def test_with_no_operator_key_configured_operator_routes_refuse_everyone(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False, operator_keys=frozenset()) as client:
        for headers in ({"x-api-key": "test-key"}, BEARER, {"x-api-key": OPERATOR_KEY}):
            response = await client.post("/v1/admin/verify", headers=headers)
            assert response.status_code == 403
            assert "TALLY_OPERATOR_KEYS" in response.json()["message"]
            assert (await client.get("/metrics", headers=headers)).status_code == 403


async def test_an_operator_verifies_every_tenant_or_one_and_polls_the_report(clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis) as client:
        for key, customer in (("test-key", "cust_1"), ("test-key", "cust_2"), (OTHER_KEY, "cust_3")):
            created = await client.post("/v1/wallets", headers={"x-api-key": key},
                                        json={"customer_id": customer, "currency": "USD",
                                              "initial_credits_to_load": "5"})
            assert created.status_code == 200
        for ref in (AccountRef("tenant_a", "env_a", "cust_1"), AccountRef("tenant_a", "env_a", "cust_2"),
                    AccountRef("tenant_b", "env_a", "cust_3")):
            await wait_folded(aredis, ref)
        everyone = await client.post("/v1/admin/verify", headers=BEARER)
        assert everyone.status_code == 202 and everyone.json()["state"] == "running"
        done = await poll_job(client, everyone.json()["job_id"])
        assert done["state"] == "done" and done["accounts_done"] == done["accounts_total"] == 3
        assert done["report"]["ok"] and done["report"]["accounts"] == 3 and done["report"]["drifts"] == []
        one_tenant = await client.post("/v1/admin/verify", headers={"x-api-key": OPERATOR_KEY},
                                       params={"tenant_id": "tenant_b", "environment_id": "env_a"})
        report = (await poll_job(client, one_tenant.json()["job_id"]))["report"]
        assert report["accounts"] == 1 and report["ok"]
        assert (await client.get("/v1/admin/verify/verify_missing", headers=BEARER)).status_code == 404


async def _long_history(client: httpx.AsyncClient, events: int) -> str:
    created = await client.post("/v1/wallets", json={"customer_id": BIG.customer_id, "currency": "USD",
                                                     "initial_credits_to_load": "100"})
    for start in range(0, events, 1000):
        bulk = [{"event_name": "api_call", "external_customer_id": BIG.customer_id, "event_id": f"e{n}",
                 "properties": {"n": n}} for n in range(start, start + 1000)]
        assert (await client.post("/v1/events/bulk", json={"events": bulk})).status_code == 202
    wallet_id: str = created.json()["id"]
    return wallet_id


async def test_a_running_verify_does_not_stall_reads_and_only_one_runs_at_a_time(
    clean_redis: str, aredis: Redis
) -> None:
    async with running_app(clean_redis) as client:
        wallet_id = await _long_history(client, 25_000)
        await wait_folded(aredis, BIG, timeout=60)
        redis, keys = connect(clean_redis), Keys(PARTITIONS)
        started = time.perf_counter()  # what the route used to do: fold the account on the event loop
        await verify_accounts(EventStore(redis, keys, 3600), Projection(redis, keys), [BIG])
        on_loop = time.perf_counter() - started
        await redis.aclose()
        job = (await client.post("/v1/admin/verify", headers=BEARER)).json()
        second = await client.post("/v1/admin/verify", headers=BEARER)
        assert second.status_code == 409 and second.json()["details"]["context"]["job_id"] == job["job_id"]
        latencies = []
        while (await client.get(f"/v1/admin/verify/{job['job_id']}", headers=BEARER)).json()["state"] == "running":
            started = time.perf_counter()
            read = await client.get(f"/v1/wallets/{wallet_id}/balance/real-time", params={"from_cache": "true"})
            latencies.append(time.perf_counter() - started)
            assert read.status_code == 200
        done = await poll_job(client, job["job_id"])
    assert done["state"] == "done" and done["report"]["events"] >= 25_000
    assert len(latencies) >= 3, f"the job ended before reads could be measured ({on_loop:.2f}s on the loop)"
    # The job folds in a worker thread: reads go on meanwhile (they share the GIL with it, so a busy machine can
    # stretch one of them; the typical read must still take a small part of what the fold takes on the loop).
    typical = statistics.median(latencies)
    assert typical < on_loop / 2, f"reads took {typical:.3f}s (median) while the fold alone takes {on_loop:.3f}s"
