"""Usage events read back on a real Redis: by id (query parameter or header scope) and by query (each filter equals
the whole list filtered in the test by the same rule, both orders, paged through iter_last_key, also when a page's
budget is smaller than the log), archived or not; unknown fields and unsupported options are a 400; an
unknown id, a lookup without its customer or another tenant's event is a 404."""

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from api import event_reads
from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from tests.support.archive import archive_env, tally
from tests.support.harness import OTHER_KEY, PARTITIONS, running_app, wait_settled
from tests.support.poison import append_raw

CUSTOMER = "cust_reads"
Event = dict[str, Any]


def events_of(customer: str, count: int) -> list[Event]:
    return [{"event_name": "api_call" if n % 3 else "login", "external_customer_id": customer,
             "event_id": f"{customer}-e{n}", "timestamp": f"2026-03-{1 + n:02d}T12:00:00Z",
             "source": "web" if n % 2 else "batch", "properties": {"tokens": n, "region": "eu" if n % 4 else "us"}}
            for n in range(count)]


async def query_all(client: Any, body: dict[str, Any], size: int = 1000) -> list[Event]:
    found: list[Event] = []
    key = None
    for _ in range(200):
        reply = await client.post("/v1/events/query", json={**body, "page_size": size,
                                                            **({"iter_last_key": key} if key else {})})
        assert reply.status_code == 200, reply.text
        found.extend(reply.json()["events"])
        key = reply.json().get("iter_last_key")
        if not reply.json()["has_more"]:
            assert key is None
            return found
    raise AssertionError("the pages never ended")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


RULES: list[tuple[dict[str, Any], Any]] = [
    ({"event_name": "login"}, lambda e: e["event_name"] == "login"),
    ({"source": "web"}, lambda e: e["source"] == "web"),
    ({"event_id": f"{CUSTOMER}-e4"}, lambda e: e["id"] == f"{CUSTOMER}-e4"),
    ({"start_time": "2026-03-05T12:00:00Z"}, lambda e: at(e["timestamp"]) >= at("2026-03-05T12:00:00Z")),
    ({"end_time": "2026-03-05T12:00:00Z"}, lambda e: at(e["timestamp"]) <= at("2026-03-05T12:00:00Z")),
    ({"property_filters": {"region": ["us"]}}, lambda e: e["properties"]["region"] == "us"),
    ({"property_filters": {"tokens": ["1", "2"], "region": ["eu"]}},
     lambda e: e["properties"]["tokens"] in (1, 2) and e["properties"]["region"] == "eu"),
]


@pytest.mark.parametrize("archived", [False, True])
async def test_events_read_back_by_id_and_by_query(
    clean_redis: str, aredis: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archived: bool
) -> None:
    sent = events_of(CUSTOMER, 12)
    async with running_app(clean_redis) as client:
        assert (await client.post("/v1/events/bulk", json={"events": sent})).status_code == 202
        assert (await client.post("/v1/events/bulk", json={"events": events_of("cust_other", 3)})).status_code == 202
        # settled, not only folded: the usage is of a past month, so its fold makes the month's PeriodClosed due and
        # the projector's clock appends it a moment later; archived before it is folded, it stays in the stream
        await wait_settled(aredis, AccountRef("tenant_a", "env_a", CUSTOMER))
        if archived:
            done = tally(clean_redis, "archive", env=archive_env(tmp_path))
            assert done.returncode == 0, done.stdout + done.stderr
            assert await aredis.xlen(Keys(PARTITIONS).log(AccountRef("tenant_a", "env_a", CUSTOMER))) == 0
        scope = {"external_customer_id": CUSTOMER}
        everything = await query_all(client, scope)
        assert [e["id"] for e in everything] == [e["event_id"] for e in reversed(sent)]
        assert everything[0]["properties"] == {"tokens": 11, "region": "eu"}
        assert everything[0]["customer_id"] == CUSTOMER
        for extra, rule in RULES:
            expected = [e["id"] for e in everything if rule(e)]
            assert [e["id"] for e in await query_all(client, {**scope, **extra})] == expected, extra
            assert [e["id"] for e in await query_all(client, {**scope, **extra, "order": "asc"}, 2)] == \
                expected[::-1], extra
        monkeypatch.setattr(event_reads, "QUERY_BUDGET", 3)
        assert [e["id"] for e in await query_all(client, scope, 2)] == [e["id"] for e in everything]
        assert [e["id"] for e in await query_all(client, {**scope, "event_name": "login"}, 1)] == \
            [e["id"] for e in everything if e["event_name"] == "login"]

        by_query = await client.get(f"/v1/events/{CUSTOMER}-e3", params=scope)
        by_header = await client.get(f"/v1/events/{CUSTOMER}-e3", headers={"x-external-customer-id": CUSTOMER})
        assert by_query.status_code == 200 and by_query.json() == by_header.json()
        assert by_query.json()["status"] == "processed"
        assert by_query.json()["event"] == next(e for e in everything if e["id"] == f"{CUSTOMER}-e3")
        assert (await client.get(f"/v1/events/{CUSTOMER}-e99", params=scope)).status_code == 404
        assert (await client.get(f"/v1/events/{CUSTOMER}-e3", params={"external_customer_id": "cust_other"})
                ).status_code == 404
        monkeypatch.setattr(event_reads, "LOOKUP_BUDGET", 2)
        bounded = await client.get(f"/v1/events/{CUSTOMER}-e3", params=scope)
        assert bounded.status_code == 404 and bounded.json()["details"]["context"]["complete"] is False


async def test_scope_unknown_fields_and_other_tenants(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        assert (await client.post("/v1/events/bulk", json={"events": events_of(CUSTOMER, 2)})).status_code == 202
        other = {"x-api-key": OTHER_KEY}
        scope = {"external_customer_id": CUSTOMER}
        assert (await client.get(f"/v1/events/{CUSTOMER}-e1", params=scope, headers=other)).status_code == 404
        theirs = await client.post("/v1/events/query", json=scope, headers=other)
        assert theirs.status_code == 200 and theirs.json()["events"] == []
        unscoped = await client.get(f"/v1/events/{CUSTOMER}-e1")
        assert unscoped.status_code == 404 and "no customer named" in unscoped.json()["message"]
        assert (await client.get("/v1/events/query")).status_code == 405, "a sibling POST route, not an event id"
        for edge in [{"iter_last_key": "0-0"}, {"iter_last_key": "99999999999999999999-0", "order": "asc"},
                     {"iter_last_key": "18446744073709551615-18446744073709551615", "order": "asc"}]:
            reply = await client.post("/v1/events/query", json={**scope, **edge})
            assert reply.status_code == 200 and reply.json()["events"] == [], (edge, reply.text)
        beyond = await client.post("/v1/events/query", json={**scope, "iter_last_key": "99999999999999999999-0"})
        assert len(beyond.json()["events"]) == 2, "every position lies before one beyond the greatest"
        for body in [{}, {**scope, "unknown": 1}, {**scope, "sort": "timestamp"}, {**scope, "iter_first_key": "1-0"},
                     {**scope, "offset": 5}, {**scope, "page_size": 0}, {**scope, "start_time": "soon"},
                     {**scope, "order": "up"}, {**scope, "iter_last_key": "x"}]:
            reply = await client.post("/v1/events/query", json=body)
            assert reply.status_code == 400 and reply.json()["code"] == "validation_error", (body, reply.text)
        assert (await client.get(f"/v1/events/{CUSTOMER}-e1", params={**scope, "expand": "x"})).status_code == 400


async def test_an_undecodable_entry_in_the_log_is_passed_over_not_a_failure(clean_redis: str, aredis: Redis) -> None:
    """A poison entry (one the projector quarantines its account on) is not an event: reads go on around it."""
    ref = AccountRef("tenant_a", "env_a", "cust_poisoned_log")
    async with running_app(clean_redis, projector=False) as client:
        first, second = events_of(ref.customer_id, 2)
        assert (await client.post("/v1/events", json=first)).status_code == 202
        await append_raw(EventStore(aredis, Keys(PARTITIONS), 3600), ref)
        assert (await client.post("/v1/events", json=second)).status_code == 202
        by_id = await client.get(f"/v1/events/{first['event_id']}", params={"external_customer_id": ref.customer_id})
        listed = await query_all(client, {"external_customer_id": ref.customer_id})
    assert by_id.status_code == 200, by_id.text
    assert [e["id"] for e in listed] == [second["event_id"], first["event_id"]]
