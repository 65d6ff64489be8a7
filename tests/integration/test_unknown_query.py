"""No query parameter is accepted silently: on every route of the OpenAPI document, through FastAPI and through the
fast path, a parameter the route does not declare is a 400 with the ErrorResponse shape naming it (and nothing is
written), while the parameters it declares keep working."""

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.harness import running_app

EVENT = {"event_name": "api_call", "external_customer_id": "cust_q", "event_id": "e-query"}


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item
            if method in {"get", "post", "put", "patch", "delete"}]


async def test_every_route_refuses_a_query_parameter_it_does_not_declare(clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis, projector=False) as client:
        document = (await client.get("/openapi.json")).json()
        found = operations(document)
        assert len(found) > 20, found  # the whole API, not a sample
        before = sorted(await aredis.keys("*"))
        for method, path in found:
            url = path.replace("{", "x").replace("}", "")  # any id: the parameter check comes first
            response = await client.request(method, url, params={"unknown_filter": "pending"}, json={})
            assert response.status_code == 400, (method, path, response.status_code, response.text)
            body = response.json()
            assert body["code"] == "validation_error" and "unknown_filter" in body["message"], body
            assert body["details"]["context"]["parameters"] == ["unknown_filter"], body
        assert sorted(await aredis.keys("*")) == before, "a refused request wrote something"


@pytest.mark.parametrize("fast_path", [True, False])
async def test_the_hot_routes_refuse_the_same_way_on_both_paths(clean_redis: str, fast_path: bool) -> None:
    async with running_app(clean_redis, projector=False, fast_path=fast_path) as client:
        created = await client.post("/v1/wallets", json={"customer_id": "cust_q", "currency": "USD"})
        wallet = created.json()["id"]
        declared = await client.get(f"/v1/wallets/{wallet}/balance/real-time",
                                    params={"from_cache": "true", "expand": "credits_available_breakdown"})
        refused = [
            await client.get(f"/v1/wallets/{wallet}/balance/real-time", params={"x-max-live": "5"}),
            await client.post("/v1/events", params={"dry_run": "1"}, json=EVENT),
            await client.post("/v1/events/bulk", params={"dry_run": "1"}, json={"events": [EVENT]}),
        ]
        listed = await client.get(f"/v1/wallets/{wallet}/transactions", params={"limit": "5", "kind": "x"})
    assert declared.status_code == 200, declared.text
    for response in [*refused, listed]:
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "validation_error"
    assert "x-max-live" in refused[0].json()["message"] and "kind" in listed.json()["message"]


async def test_hostile_parameter_names_are_refused_and_repeated_back_bounded(clean_redis: str) -> None:
    names = {"x" * 5000: "1", "a:b\x01": "2", **{f"p{n:02d}": "v" for n in range(30)}}
    async with running_app(clean_redis, projector=False) as client:
        responses = [await client.get("/v1/wallets/w_none/transactions", params=names),
                     await client.get("/v1/wallets/w_none/balance/real-time", params=names)]
    for response in responses:
        assert response.status_code == 400, response.text
        shown = response.json()["details"]["context"]["parameters"]
        assert len(shown) == 10 and all(len(name) <= 64 for name in shown), shown
        assert len(response.text) < 2000
