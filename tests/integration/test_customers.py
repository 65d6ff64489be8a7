"""Customers on a real Redis: the internal id and the external id reach one account (usage sent before the customer
existed included); create, read, search, update and delete keep their promises; nothing leaks across tenants."""

from typing import Any
from urllib.parse import quote

from redis.asyncio import Redis

from domain.identity import AccountRef
from tests.support.harness import OTHER_KEY, running_app, wait_folded

PRICE = {"event_name": "api_call", "currency": "USD", "aggregation": {"type": "SUM", "field": "tokens"},
         "billing_model": "FLAT_FEE", "amount": "1"}


async def create_customer(client: Any, external_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/customers", json={"external_id": external_id, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def usage(customer: dict[str, str], event_id: str, tokens: int = 1) -> dict[str, Any]:
    return {"event_name": "api_call", "event_id": event_id, "properties": {"tokens": str(tokens)}, **customer}


async def test_usage_by_external_id_early_and_late_and_by_internal_id_reaches_the_wallet(
    clean_redis: str, aredis: Redis
) -> None:
    async with running_app(clean_redis) as client:
        assert (await client.post("/v1/prices", json=PRICE)).status_code == 201
        early = await client.post("/v1/events", json=usage({"external_customer_id": "acme-42"}, "e-early", 2))
        customer = await create_customer(client, "acme-42", name="Acme")
        wallet = await client.post("/v1/wallets", json={"customer_id": customer["id"], "currency": "USD",
                                                        "initial_credits_to_load": "100"})
        late = await client.post("/v1/events", json=usage({"external_customer_id": "acme-42"}, "e-late", 3))
        internal = await client.post("/v1/events", json=usage(
            {"customer_id": customer["id"], "external_customer_id": "acme-42"}, "e-internal", 5))
        bulk = await client.post("/v1/events/bulk", json={"events": [
            usage({"customer_id": customer["id"], "external_customer_id": "acme-42"}, "e-bulk", 7)]})
        balance = (await client.get(f"/v1/wallets/{wallet.json()['id']}/balance/real-time")).json()
        by_internal = (await client.get(f"/v1/customers/{customer['id']}/wallets")).json()
        by_external = (await client.get("/v1/customers/acme-42/wallets")).json()
        await wait_folded(aredis, AccountRef("tenant_a", "env_a", "acme-42"))
        strays = [key async for key in aredis.scan_iter(f"*{customer['id']}*:log")]
    assert strays == []  # no account was opened under the internal id
    assert [r.status_code for r in (early, wallet, late, internal, bulk)] == [202, 200, 202, 202, 202]
    assert wallet.json()["customer_id"] == customer["id"]
    assert balance["current_period_usage"] == "17"  # 2 + 3 + 5 + 7 tokens at 1 USD, all on one account
    assert [w["id"] for w in by_internal] == [w["id"] for w in by_external] == [wallet.json()["id"]]


async def test_a_wallet_named_by_external_id_shows_the_customers_internal_id(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        customer = await create_customer(client, "ext-7")
        wallet = await client.post("/v1/wallets", json={"external_customer_id": "ext-7", "currency": "USD"})
        legacy = await client.post("/v1/wallets", json={"customer_id": "plain-name", "currency": "USD"})
    assert wallet.json()["customer_id"] == customer["id"]
    assert legacy.json()["customer_id"] == "plain-name"  # a name with no customer is the account, as before


async def test_an_event_whose_two_ids_name_different_customers_is_refused(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        first = await create_customer(client, "one")
        await create_customer(client, "two")
        refused = await client.post("/v1/events", json=usage(
            {"customer_id": first["id"], "external_customer_id": "two"}, "e-1"))
        bulk = await client.post("/v1/events/bulk", json={"events": [
            usage({"customer_id": first["id"], "external_customer_id": "two"}, "e-2")]})
        log = await client.get("/v1/customers/one/usage")
    assert refused.status_code == 400 and refused.json()["code"] == "validation_error"
    assert bulk.status_code == 400 and "0" in bulk.json()["details"]["context"]["events"]
    assert log.json()["periods"] == []


async def test_create_read_update_and_the_external_id_taken_or_changed(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        customer = await create_customer(client, "ext-1", name="A", email="a@example.com", metadata={"tier": "gold"})
        again = await client.post("/v1/customers", json={"external_id": "ext-1"})
        by_id = (await client.get(f"/v1/customers/{customer['id']}")).json()
        by_external = (await client.get("/v1/customers/external/ext-1")).json()
        updated = await client.put(f"/v1/customers?id={customer['id']}", json={"name": "B", "address_city": "Oslo"})
        by_ext_update = await client.put("/v1/customers?external_customer_id=ext-1", json={"email": "b@example.com"})
        moved = await client.put(f"/v1/customers?id={customer['id']}", json={"external_id": "ext-2"})
        missing = await client.get("/v1/customers/cust_01JZZZZZZZZZZZZZZZZZZZZZZZ")
        after = (await client.get(f"/v1/customers/{customer['id']}")).json()
    assert again.status_code == 409 and again.json()["details"]["context"]["customer_id"] == customer["id"]
    assert by_id == by_external == customer
    assert customer["status"] == "published" and customer["metadata"] == {"tier": "gold"}
    assert updated.status_code == 200 and updated.json()["name"] == "B"
    assert by_ext_update.status_code == 200
    assert moved.status_code == 400 and moved.json()["code"] == "invalid_operation"
    assert missing.status_code == 404
    assert (after["name"], after["address_city"], after["email"], after["external_id"]) == (
        "B", "Oslo", "b@example.com", "ext-1")


async def test_search_by_ids_email_metadata_time_and_pages(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        made = [await create_customer(client, f"s-{n}", email=f"{n % 2}@example.com", metadata={"n": str(n)})
                for n in range(5)]

        async def search(**body: Any) -> dict[str, Any]:
            response = await client.post("/v1/customers/search", json=body)
            assert response.status_code == 200, response.text
            found: dict[str, Any] = response.json()
            return found

        every = await search()
        oldest_first = await search(order="asc", limit=2, offset=1)
        by_ids = await search(customer_ids=[made[1]["id"], made[3]["id"]])
        both = await search(customer_ids=[made[1]["id"], made[3]["id"]], external_ids=["s-3", "s-4"])
        by_email = await search(email="0@example.com")
        by_meta = await search(metadata={"n": "3"})
        since = await search(start_time=made[2]["created_at"], order="asc")
        refused = [await client.post("/v1/customers/search", json=body) for body in (
            {"filters": [{"field": "name"}]}, {"unknown": 1}, {"sort": [{"field": "name"}]}, {"expand": "wallets"})]
    assert [c["external_id"] for c in every["items"]] == [f"s-{n}" for n in (4, 3, 2, 1, 0)]
    assert every["pagination"] == {"total": 5, "limit": 50, "offset": 0}
    assert [c["external_id"] for c in oldest_first["items"]] == ["s-1", "s-2"]
    assert sorted(c["external_id"] for c in by_ids["items"]) == ["s-1", "s-3"]
    assert [c["external_id"] for c in both["items"]] == ["s-3"]  # filters combine: both must hold
    assert sorted(c["external_id"] for c in by_email["items"]) == ["s-0", "s-2", "s-4"]
    assert [c["external_id"] for c in by_meta["items"]] == ["s-3"]
    assert [c["external_id"] for c in since["items"]] == ["s-2", "s-3", "s-4"]
    assert [r.status_code for r in refused] == [400] * 4


async def test_delete_is_refused_while_wallets_exist_and_frees_the_external_id(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        kept = await create_customer(client, "with-wallet")
        await client.post("/v1/wallets", json={"customer_id": kept["id"], "currency": "USD"})
        refused = await client.delete(f"/v1/customers/{kept['id']}")
        gone = await create_customer(client, "bare")
        deleted = await client.delete(f"/v1/customers/{gone['id']}")
        read = await client.get(f"/v1/customers/{gone['id']}")
        listed = (await client.post("/v1/customers/search", json={})).json()
        recreated = await client.post("/v1/customers", json={"external_id": "bare"})
    assert refused.status_code == 400 and refused.json()["details"]["context"]["wallets"] == 1
    assert deleted.status_code == 204 and read.status_code == 404
    assert [c["external_id"] for c in listed["items"]] == ["with-wallet"]
    assert recreated.status_code == 201 and recreated.json()["id"] != gone["id"]


async def test_bad_input_is_a_400_and_tenants_do_not_see_each_other(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        customer = await create_customer(client, "mine")
        bad = [await client.post("/v1/customers", json=body) for body in (
            {}, {"external_id": ""}, {"external_id": "x", "nickname": "y"},
            {"external_id": "x", "tax_rate_overrides": [{"tax_rate_id": "t"}]},
            {"external_id": "cust_01JABCDEFGHJKMNPQRSTVWXYZ0"}, {"external_id": "x" * 256})]
        foreign_get = await client.get(f"/v1/customers/{customer['id']}", headers={"x-api-key": OTHER_KEY})
        foreign_external = await client.get("/v1/customers/external/mine", headers={"x-api-key": OTHER_KEY})
        foreign_search = await client.post("/v1/customers/search", json={}, headers={"x-api-key": OTHER_KEY})
        foreign_delete = await client.delete(f"/v1/customers/{customer['id']}", headers={"x-api-key": OTHER_KEY})
        listed = (await client.post("/v1/customers/search", json={})).json()
    assert [r.status_code for r in bad] == [400] * 6
    assert all(set(r.json()) == {"code", "message", "http_status_code", "details"} for r in bad)
    assert foreign_get.status_code == foreign_external.status_code == foreign_delete.status_code == 404
    assert foreign_search.json()["items"] == []
    assert [c["id"] for c in listed["items"]] == [customer["id"]]


async def test_hostile_ids_stay_in_their_tenant_and_never_collide(clean_redis: str, aredis: Redis) -> None:
    """External ids with separators and hash-tag braces name their own accounts; another tenant's internal customer
    id names nothing of that tenant's (it is just an account name here)."""
    async with running_app(clean_redis) as client:
        assert (await client.post("/v1/prices", json=PRICE)).status_code == 201
        odd = [await create_customer(client, external) for external in ("a:b", "a", "{p001}x", "x" * 255)]
        foreign = (await client.post("/v1/customers", json={"external_id": "theirs"},
                                     headers={"x-api-key": OTHER_KEY})).json()
        wallet = await client.post("/v1/wallets", json={"customer_id": foreign["id"], "currency": "USD"})
        event = usage({"customer_id": foreign["id"], "external_customer_id": "mine"}, "e-foreign")
        sent = await client.post("/v1/events", json=event)
        found = [(await client.get("/v1/customers/external/" + quote(c["external_id"], safe=""))).json() for c in odd]
        theirs = await client.get("/v1/customers/external/theirs", headers={"x-api-key": OTHER_KEY})
    assert [c["id"] for c in found] == [c["id"] for c in odd]  # four external ids, four customers
    assert wallet.status_code == 200 and wallet.json()["customer_id"] == foreign["id"]  # a plain name here
    assert sent.status_code == 202  # not resolved to the other tenant's customer: no mismatch to refuse
    assert theirs.json()["id"] == foreign["id"]
    assert not [key async for key in aredis.scan_iter("*theirs*:log")]  # nothing reached the other tenant's account
