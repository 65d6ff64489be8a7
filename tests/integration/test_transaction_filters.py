"""Wallet-transaction filters on a real Redis: each filter of the list (GET) and of the search (POST) returns exactly
the unfiltered list filtered in the test by the same rule, in both orders, page by page through the cursor (also
when a request's scan budget is smaller than the ledger, and for entries past the window Redis keeps, archived or
not); unknown or unsupported filters and invalid values are a 400; a tenant never lists another's wallet."""

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from api import transactions
from domain.events import CreditsExpired, CreditsGranted
from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from tests.support.archive import archive_env, tally
from tests.support.harness import OTHER_KEY, PARTITIONS, make_settings, running_app, wait_folded

REF = AccountRef("tenant_a", "env_a", "cust_filters")
LATER = "2030-01-01T00:00:00+00:00"
Item = dict[str, Any]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def fill(client: Any, store: EventStore, aredis: Redis) -> str:
    """A wallet whose ledger has every kind of entry: initial credits, direct, invoiced, pending (as an invoiced
    auto top-up writes it), prioritised or expiring top-ups, debits with and without keys, and an expiry (with its
    parent)."""
    reply = await client.post("/v1/wallets", json={"customer_id": REF.customer_id, "currency": "USD",
                                                   "initial_credits_to_load": "100"})
    wallet_id: str = reply.json()["id"]
    bodies = [
        ("top-up", {"credits_to_add": "5", "transaction_reason": "PURCHASED_CREDIT_DIRECT", "priority": 1,
                    "idempotency_key": "buy-1"}),
        ("top-up", {"credits_to_add": "7.5", "transaction_reason": "FREE_CREDIT_GRANT",
                    "expiry_date_utc": LATER}),
        ("debit", {"credits": "3", "idempotency_key": "use-1"}),
        ("top-up", {"credits_to_add": "2", "transaction_reason": "PURCHASED_CREDIT_INVOICED", "priority": 2}),
        ("debit", {"credits": "1", "transaction_reason": "CREDIT_ADJUSTMENT"}),
        ("top-up", {"credits_to_add": "9", "transaction_reason": "SUBSCRIPTION_CREDIT_GRANT", "priority": 1,
                    "expiry_date_utc": "2031-06-01T00:00:00Z"}),
        ("debit", {"credits": "100"}),
    ]
    for path, body in bodies:
        done = await client.post(f"/v1/wallets/{wallet_id}/{path}", json=body)
        assert done.status_code == 200, done.text
    now = (await store.read_account(REF)).account.wallets[wallet_id].balance_updated_at
    await store.append(REF, [
        CreditsGranted(id="evt_pending", at=now, wallet_id=wallet_id, transaction_id="wtx_pending",
                       credits=Decimal(50), reason="PURCHASED_CREDIT_INVOICED", pending=True),
        CreditsGranted(id="evt_soon", at=now, wallet_id=wallet_id, transaction_id="wtx_soon", credits=Decimal(4),
                       reason="FREE_CREDIT_GRANT", expires_at=now + timedelta(seconds=1)),
        CreditsExpired(id="evt_gone", at=now + timedelta(seconds=1), wallet_id=wallet_id, lot_id="wtx_soon",
                       transaction_id="exp_wtx_soon"),
    ])
    await wait_folded(aredis, REF)
    return wallet_id


async def every_page(client: Any, url: str, params: dict[str, Any], limit: int, post: bool = False,
                     offset: int = 0) -> list[Item]:
    """All items of a list or search, page by page through next_cursor (`offset` on the first page only: a cursor
    continues after the matches it skipped)."""
    items: list[Item] = []
    cursor = None
    for _ in range(500):
        asked = {**params, "limit": limit, **({"cursor": cursor} if cursor else {"offset": offset})}
        reply = await (client.post(url, json=asked) if post else client.get(url, params=asked))
        assert reply.status_code == 200, reply.text
        items.extend(reply.json()["items"])
        cursor = reply.json()["pagination"].get("next_cursor")
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def gt(value: str) -> Callable[[Item], bool]:
    return lambda i: Decimal(i["credits_available"]) > Decimal(value)


FILTERS: list[tuple[dict[str, Any], Callable[[Item], bool]]] = [
    ({"type": "credit"}, lambda i: i["type"] == "credit"),
    ({"type": "debit"}, lambda i: i["type"] == "debit"),
    ({"transaction_status": "pending"}, lambda i: i["transaction_status"] == "pending"),
    ({"transaction_status": "completed"}, lambda i: i["transaction_status"] == "completed"),
    ({"transaction_status": "failed"}, lambda i: False),
    ({"transaction_reason": "FREE_CREDIT_GRANT"}, lambda i: i["transaction_reason"] == "FREE_CREDIT_GRANT"),
    ({"transaction_reason": "CREDIT_EXPIRED"}, lambda i: i["transaction_reason"] == "CREDIT_EXPIRED"),
    ({"reference_type": "REQUEST"}, lambda i: i.get("reference_type") == "REQUEST"),
    ({"reference_id": "buy-1"}, lambda i: i.get("reference_id") == "buy-1"),
    ({"reference_type": "REQUEST", "reference_id": "use-1"}, lambda i: i.get("reference_id") == "use-1"),
    ({"expiry_date_before": "2031-01-01T00:00:00Z"},
     lambda i: "expiry_date" in i and at(i["expiry_date"]) < at("2031-01-01T00:00:00Z")),
    ({"expiry_date_after": LATER}, lambda i: "expiry_date" in i and at(i["expiry_date"]) > at(LATER)),
    ({"credits_available_gt": "0"}, gt("0")),
    ({"credits_available_gt": "7.4"}, gt("7.4")),
    ({"priority": 1}, lambda i: i.get("priority") == 1),
    ({"created_by": "tenant_a"}, lambda i: i.get("created_by") == "tenant_a"),
    ({"created_by": "nobody"}, lambda i: False),
    ({"status": "published"}, lambda i: True),
    ({"status": "deleted"}, lambda i: False),
    ({"type": "credit", "priority": 1, "credits_available_gt": "5"},
     lambda i: i["type"] == "credit" and i.get("priority") == 1 and gt("5")(i)),
]


def time_filters(items: list[Item]) -> list[tuple[dict[str, Any], Callable[[Item], bool]]]:
    """start_time/end_time cut at the created_at of entries in the middle (both bounds inclusive)."""
    middle, later = at(items[4]["created_at"]), at(items[2]["created_at"])
    start, end = items[4]["created_at"], items[2]["created_at"]
    return [({"start_time": start}, lambda i: at(i["created_at"]) >= middle),
            ({"end_time": end}, lambda i: at(i["created_at"]) <= later),
            ({"start_time": start, "end_time": end}, lambda i: middle <= at(i["created_at"]) <= later)]


@pytest.mark.parametrize("archived", [False, True])
async def test_each_filter_is_the_unfiltered_list_filtered_by_the_same_rule(
    clean_redis: str, aredis: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archived: bool
) -> None:
    store = EventStore(aredis, Keys(PARTITIONS), 3600)
    async with running_app(clean_redis, settings=make_settings(ledger_keep=3)) as client:
        wallet_id = await fill(client, store, aredis)
        if archived:
            done = tally(clean_redis, "archive", env=archive_env(tmp_path))
            assert done.returncode == 0, done.stdout + done.stderr
        url = f"/v1/wallets/{wallet_id}/transactions"
        everything = (await client.get(url, params={"limit": 1000})).json()["items"]
        assert len(everything) == 11
        kinds = {(i["transaction_reason"], i.get("reference_type"), i.get("parent_transaction_id")) for i in everything}
        assert ("CREDIT_EXPIRED", None, "wtx_soon") in kinds
        assert all(i["credits_available"] == "0" for i in everything if i["type"] == "debit")
        assert any(i["transaction_status"] == "pending" for i in everything)
        for params, rule in [*FILTERS, *time_filters(everything)]:
            expected = [i["id"] for i in everything if rule(i)]
            whole = (await client.get(url, params={**params, "limit": 1000})).json()
            assert [i["id"] for i in whole["items"]] == expected, params
            assert whole["pagination"]["total"] == len(expected), params
            oldest_first = await every_page(client, url, {**params, "order": "asc"}, 2)
            assert [i["id"] for i in oldest_first] == expected[::-1], params
            searched = await every_page(client, "/v1/wallets/transactions/search", {**params, "id": wallet_id}, 3,
                                        post=True)
            assert [i["id"] for i in searched] == expected, params
        monkeypatch.setattr(transactions, "SCAN_BUDGET", 2)  # a budget smaller than the ledger: pages continue
        for params, rule in FILTERS[:4]:
            expected = [i["id"] for i in everything if rule(i)]
            assert [i["id"] for i in await every_page(client, url, params, 2)] == expected, params
            skipped = await every_page(client, url, params, 2, offset=1)
            assert [i["id"] for i in skipped] == expected[1:], params
            first = (await client.get(url, params={**params, "limit": 1000})).json()["pagination"]
            assert "total" not in first, "a scan that did not cover the ledger does not know the total"
        debits = [i["id"] for i in everything if i["type"] == "debit"]
        carried = (await client.get(url, params={"type": "debit", "offset": 2, "limit": 1})).json()["pagination"]
        assert carried["next_cursor"].endswith(":1"), "the budget ran out while skipping: the cursor carries the rest"
        assert [i["id"] for i in await every_page(client, url, {"type": "debit"}, 1, offset=2)] == debits[2:]


REFUSED = [
    {"unknown_filter": "x"}, {"type": "CREDIT"}, {"transaction_status": "done"}, {"transaction_reason": "GIFT"},
    {"start_time": "yesterday"}, {"end_time": "2026-01-01T00:00:00"}, {"expiry_date_before": "2026-13-01T00:00:00Z"},
    {"credits_available_gt": "abc"}, {"priority": "-1"}, {"status": "gone"}, {"order": "up"}, {"sort": "amount"},
    {"sort": "created_at", "order": "asc", "expand": "wallet"}, {"cursor": "x1"}, {"priority": "2000000000"},
]
SEARCH_REFUSED = [
    {"unknown_field": 1}, {"type": "CREDIT"}, {"start_time": "not a time"}, {"credits_available_gt": "NaN"},
    {"filters": [{"field": "amount", "operator": "gt", "value": {"number": 1}}]},
    {"sort": [{"field": "amount", "direction": "asc"}]}, {"sort": [{"field": "created_at"}, {"field": "created_at"}]},
    {"expand": "customer"}, {"limit": 0}, {"priority": -1}, {"credits_available_gt": " 1"}, {"cursor": "1:x"},
]


async def test_unknown_filters_and_bad_values_are_a_400_and_another_tenant_lists_nothing(
    clean_redis: str, aredis: Redis
) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet_id = (await client.post("/v1/wallets", json={"customer_id": "cust_r", "currency": "USD",
                                                            "initial_credits_to_load": "1"})).json()["id"]
        url = f"/v1/wallets/{wallet_id}/transactions"
        for params in REFUSED:
            reply = await client.get(url, params=params)
            assert reply.status_code == 400 and reply.json()["code"] == "validation_error", (params, reply.text)
        search = "/v1/wallets/transactions/search"
        for body in SEARCH_REFUSED:
            reply = await client.post(search, json={"id": wallet_id, **body})
            assert reply.status_code == 400 and reply.json()["code"] == "validation_error", (body, reply.text)
        missing = await client.post(search, json={"type": "credit"})
        assert missing.status_code == 400 and "id" in missing.json()["message"]
        assert (await client.post(search, json={"id": wallet_id})).json()["pagination"]["total"] == 1
        elsewhere = await client.get(url, params={"id": "wallet_other"})  # another wallet's transactions: none here
        assert elsewhere.status_code == 200 and elsewhere.json()["items"] == []
        assert len((await client.get(url, params={"id": wallet_id})).json()["items"]) == 1
        both = {"id": wallet_id, "order": "desc", "sort": [{"field": "created_at", "direction": "asc"}]}
        assert (await client.post(search, json=both)).status_code == 200, "a sort direction takes precedence"
        other = {"x-api-key": OTHER_KEY}
        assert (await client.get(url, headers=other)).status_code == 404
        assert (await client.post(search, json={"id": wallet_id}, headers=other)).status_code == 404
