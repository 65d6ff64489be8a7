"""Wallet lists and search on a real Redis: every filter of GET /v1/wallets and POST /v1/wallets/search gives the
unfiltered list filtered by the same rule; an unknown filter is a 400 in the query and in the body; the scan bound
is a 400; tenants never see each other's wallets; `expand` is honoured wherever a wallet is returned."""

from typing import Any

import httpx
import pytest

from domain import bounds
from tests.support.harness import OTHER_KEY, running_app

ALERTS = {"alert_enabled": True, "critical": {"threshold": 1, "condition": "below"}}
BREAKDOWN = "credits_available_breakdown"


async def make_wallets(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Seven wallets over four customers: active, frozen and closed; with alerts enabled, disabled and unset."""
    made = []
    for n in range(7):
        body: dict[str, Any] = {"customer_id": f"cust-{n % 4}", "currency": ["USD", "EUR"][n // 4],
                                "initial_credits_to_load": str(n + 1)}
        if n % 3 == 0:
            body["alert_settings"] = ALERTS
        if n % 3 == 1:
            body["alert_settings"] = {"alert_enabled": False}
        created = await client.post("/v1/wallets", json=body)
        assert created.status_code == 200, created.text
        made.append(created.json())
    for n, action in ((1, "freeze"), (4, "freeze"), (2, "terminate")):
        assert (await client.post(f"/v1/wallets/{made[n]['id']}/{action}")).status_code == 200
    return made


def alerting(item: dict[str, Any]) -> bool:
    return bool((item.get("alert_settings") or {}).get("alert_enabled", False))


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


async def both(client: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The same filters as query parameters and as a search body: both answers, checked equal."""
    listed = await client.get("/v1/wallets", params=params)
    searched = await client.post("/v1/wallets/search", json=params)
    assert listed.status_code == searched.status_code == 200, (listed.text, searched.text)
    assert listed.json() == searched.json()
    return [listed.json(), searched.json()]


async def test_every_filter_gives_the_unfiltered_list_filtered_by_the_same_rule(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        made = await make_wallets(client)
        everything = (await client.get("/v1/wallets", params={"limit": 500})).json()
        cases: list[tuple[dict[str, Any], Any]] = [
            *[({"status": s}, lambda i, s=s: i["wallet_status"] == s) for s in ("active", "frozen", "closed")],
            *[({"alert_enabled": a}, lambda i, a=a: alerting(i) == a) for a in (True, False)],
            ({"status": "active", "alert_enabled": True}, lambda i: i["wallet_status"] == "active" and alerting(i)),
            ({"wallet_ids": [made[0]["id"], made[5]["id"], "w_missing"]}, lambda i: i["id"] in ids(made[0:6:5])),
            ({"wallet_ids": [made[1]["id"], made[3]["id"]], "status": "frozen"}, lambda i: i["id"] == made[1]["id"]),
        ]
        answers = [(params, rule, await both(client, params)) for params, rule in cases]
        oldest_first = await both(client, {"order": "asc", "sort": "created_at", "limit": 500})
        pages = [await both(client, {"limit": 3, "offset": offset}) for offset in (0, 3, 6)]
        filtered_page = await both(client, {"alert_enabled": False, "limit": 2, "offset": 1})
    items = everything["items"]
    assert ids(items) == ids(made)[::-1]  # newest first
    assert everything["pagination"] == {"total": 7, "limit": 500, "offset": 0}
    assert [i["wallet_status"] for i in items].count("frozen") == 2 and items[4]["wallet_status"] == "closed"
    for params, rule, (answer, _) in answers:
        expected = [item for item in items if rule(item)]
        assert answer["items"] == expected, params
        assert answer["pagination"]["total"] == len(expected), params
    assert oldest_first[0]["items"] == items[::-1]
    assert [page[0]["items"] for page in pages] == [items[0:3], items[3:6], items[6:]]
    assert all(page[0]["pagination"]["total"] == 7 for page in pages)
    not_alerting = [item for item in items if not alerting(item)]
    assert filtered_page[0]["items"] == not_alerting[1:3]
    assert filtered_page[0]["pagination"] == {"total": len(not_alerting), "limit": 2, "offset": 1}


async def test_an_unknown_or_unsupported_filter_is_a_400_in_the_query_and_in_the_body(clean_redis: str) -> None:
    refused_bodies = [{"customer_id": "cust-0"}, {"start_time": "2026-01-01T00:00:00Z"}, {"filters": []},
                      {"sort": "updated_at"}, {"order": "sideways"}, {"status": "published"}, {"limit": 0},
                      {"limit": bounds.WALLETS_PAGE_MAX + 1}, {"expand": "plans"}, {"wallet_ids": ["x"] * 101}]
    refused_queries = [{"customer_id": "cust-0"}, {"start_time": "2026-01-01T00:00:00Z"}, {"sort": "updated_at"},
                       {"status": "published"}, {"expand": "plans"}, {"limit": bounds.WALLETS_PAGE_MAX + 1}]
    async with running_app(clean_redis, projector=False) as client:
        await make_wallets(client)
        bodies = [await client.post("/v1/wallets/search", json=body) for body in refused_bodies]
        queries = [await client.get("/v1/wallets", params=params) for params in refused_queries]
        not_json = await client.post("/v1/wallets/search", content=b"[")
    for response in [*bodies, *queries, not_json]:
        assert response.status_code == 400, (response.request.url, response.text)
        assert response.json()["code"] == "validation_error"
    assert "customer_id" in bodies[0].json()["message"] and "customer_id" in queries[0].json()["message"]


async def test_a_filter_that_would_examine_too_many_wallets_is_a_400(
    clean_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounds, "WALLETS_SCAN_MAX", 5)
    async with running_app(clean_redis, projector=False) as client:
        made = await make_wallets(client)
        scanned = await client.post("/v1/wallets/search", json={"status": "active"})
        paged = await client.post("/v1/wallets/search", json={"limit": 2})
        named = await client.post("/v1/wallets/search", json={"status": "active", "wallet_ids": ids(made)})
    assert scanned.status_code == 400 and scanned.json()["details"]["context"]["limit"] == 5, scanned.text
    assert paged.status_code == 200 and named.status_code == 200  # no filter, or named wallets: nothing is scanned
    assert len(named.json()["items"]) == 4


async def test_tenants_never_see_each_others_wallets(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        mine = await make_wallets(client)
        other = {"x-api-key": OTHER_KEY}
        theirs = await client.post("/v1/wallets", headers=other, json={"customer_id": "cust-0", "currency": "USD"})
        their_list = (await client.get("/v1/wallets", headers=other)).json()
        their_search = (await client.post("/v1/wallets/search", headers=other,
                                          json={"wallet_ids": ids(mine)})).json()
        my_search = (await client.post("/v1/wallets/search", json={"wallet_ids": [theirs.json()["id"]]})).json()
        my_list = (await client.get("/v1/wallets")).json()
        their_customer = (await client.get("/v1/customers/wallets", headers=other,
                                           params={"lookup_key": "cust-1"})).json()
    assert ids(their_list["items"]) == [theirs.json()["id"]] and their_list["pagination"]["total"] == 1
    assert their_search["items"] == [] and my_search["items"] == [] and their_customer == []
    assert theirs.json()["id"] not in ids(my_list["items"]) and my_list["pagination"]["total"] == 7


async def test_expand_gives_the_breakdown_wherever_a_wallet_is_returned(clean_redis: str) -> None:
    expand = {"expand": BREAKDOWN}
    async with running_app(clean_redis, projector=False) as client:
        created = await client.post("/v1/wallets", params=expand, json={"customer_id": "cust-x", "currency": "USD",
                                                                         "initial_credits_to_load": "5"})
        wallet = created.json()["id"]
        plain = await client.get(f"/v1/wallets/{wallet}")
        answers = [
            created.json(), (await client.get(f"/v1/wallets/{wallet}", params=expand)).json(),
            (await client.put(f"/v1/wallets/{wallet}", params=expand, json={"name": "n"})).json(),
            (await client.get("/v1/wallets", params=expand)).json()["items"][0],
            (await client.post("/v1/wallets/search", json=expand)).json()["items"][0],
            (await client.get("/v1/customers/cust-x/wallets", params=expand)).json()[0],
            (await client.get("/v1/customers/wallets", params={"id": "cust-x", **expand})).json()[0],
            (await client.post(f"/v1/wallets/{wallet}/freeze", params=expand)).json(),
        ]
        refused = await client.get(f"/v1/wallets/{wallet}", params={"expand": "plans"})
    assert "credits_available_breakdown" not in plain.json()
    for answer in answers:
        assert answer["credits_available_breakdown"] == {"free": "5", "purchased": "0"}, answer
    assert refused.status_code == 400
