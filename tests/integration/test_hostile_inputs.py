"""Hostile inputs on a real Redis: each class of out-of-bounds value is a 4xx with the ErrorResponse shape, writes
nothing (feeds and keys unchanged, no orphan wallet index), and a neighbour in the same partition keeps folding.
Values exactly at a bound are accepted."""

from typing import Any

import pytest
from redis.asyncio import Redis

from domain import bounds
from domain.identity import AccountRef
from store.eventstore import EventStore
from tests.support.harness import OTHER_KEY
from tests.support.hostile import HOSTILE, Stage, assert_refused, staged

Case = tuple[str, str, str, Any]  # name, method, url, JSON body (bytes: sent as is)
CONTROLS = ("\x00", "\n", "\x7f")
TOO_LONG = "x" * (bounds.ID_MAX_LENGTH + 1)
AT_BOUND = "x" * bounds.ID_MAX_LENGTH
EVENT = {"event_name": "api_call", "external_customer_id": HOSTILE, "event_id": "e-hostile"}
PRICE = {"event_name": "api_call", "currency": "USD", "aggregation": {"type": "COUNT"}, "billing_model": "FLAT_FEE",
         "amount": "1"}
GRANT = {"credits_to_add": "1", "transaction_reason": "FREE_CREDIT_GRANT"}


async def send(stage: Stage, method: str, url: str, body: Any) -> Any:
    if isinstance(body, bytes):
        return await stage.client.request(method, url, content=body)
    return await stage.client.request(method, url, json=body)


async def refuse_all(stage: Stage, cases: list[Case], status: int = 400, code: str = "validation_error") -> None:
    for name, method, url, body in cases:
        assert_refused(name, await send(stage, method, url, body), status, code)
    await stage.assert_nothing_written()


async def accept_all(stage: Stage, cases: list[Case]) -> None:
    for name, method, url, body in cases:
        response = await send(stage, method, url, body)
        assert response.status_code < 300, f"{name}: {response.status_code} {response.text[:300]}"


def text_cases(field: str, method: str, url: str, base: dict[str, Any], long: str = TOO_LONG) -> list[Case]:
    """The field too long by one, then holding each control character."""
    cases: list[Case] = [(f"{field} too long", method, url, {**base, field: long})]
    cases += [(f"{field} with {c!r}", method, url, {**base, field: f"a{c}b"}) for c in CONTROLS]
    cases += [(f"{field} ending in {c!r}", method, url, {**base, field: f"ab{c}"}) for c in CONTROLS]
    return cases


def id_cases(wallet_id: str) -> list[Case]:
    wallet = {"customer_id": HOSTILE, "currency": "EUR"}
    top_up, long_key = f"/v1/wallets/{wallet_id}/top-up", "k" * (bounds.IDEMPOTENCY_KEY_MAX_LENGTH + 1)
    cases = text_cases("customer_id", "POST", "/v1/wallets", wallet)
    cases += text_cases("external_customer_id", "POST", "/v1/wallets", {"currency": "EUR"})
    cases += [(f"currency {c!r}", "POST", "/v1/wallets", {**wallet, "currency": c})
              for c in ("US", "USDD", "ÜSD", "U1D", "", "US\x00", "USD\n", "US\n")]
    cases.append(("no customer", "POST", "/v1/wallets", {"customer_id": "", "currency": "EUR"}))
    for field in ("event_id", "event_name", "external_customer_id", "customer_id", "source"):
        cases += text_cases(field, "POST", "/v1/events", EVENT)
    cases += [(f"empty {f}", "POST", "/v1/events", {**EVENT, f: ""})
              for f in ("event_id", "event_name", "external_customer_id")]
    cases.append(("bulk event_id", "POST", "/v1/events/bulk", {"events": [EVENT, {**EVENT, "event_id": TOO_LONG}]}))
    cases += text_cases("idempotency_key", "POST", top_up, GRANT, long_key)
    cases += text_cases("idempotency_key", "POST", f"/v1/wallets/{wallet_id}/debit", {"credits": "1"}, long_key)
    cases += text_cases("lookup_key", "POST", "/v1/prices", PRICE)
    cases += text_cases("event_name", "POST", "/v1/prices", PRICE)
    cases.append(("price currency", "POST", "/v1/prices", {**PRICE, "currency": "DOLLAR"}))
    for bad in (TOO_LONG, "a%00b", "a%0Ab", "a%7Fb", "ab%0A", "a%C2%85b"):
        cases += [
            (f"wallet path {bad[:8]}", "GET", f"/v1/wallets/{bad}", None),
            (f"balance path {bad[:8]}", "GET", f"/v1/wallets/{bad}/balance/real-time", None),
            (f"top-up path {bad[:8]}", "POST", f"/v1/wallets/{bad}/top-up", GRANT),
            (f"customer path {bad[:8]}", "GET", f"/v1/customers/{bad}/wallets", None),
            (f"billing path {bad[:8]}", "PUT", f"/v1/customers/{bad}/billing",
             {"anchor": "2030-01-01T00:00:00Z", "period": {"unit": "day"}}),
            (f"transaction path {bad[:8]}", "POST", f"/v1/wallets/{wallet_id}/transactions/{bad}/pay", None),
            (f"endpoint path {bad[:8]}", "DELETE", f"/v1/webhooks/endpoints/{bad}", None),
        ]
    return cases


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast_path", "fastapi"])
async def test_ids_and_keys_are_bounded_and_free_of_control_characters(
    clean_redis: str, aredis: Redis, fast_path: bool
) -> None:
    async with staged(clean_redis, aredis, fast_path) as stage:
        await refuse_all(stage, id_cases(stage.wallet_id))
        await accept_all(stage, [
            ("customer_id at the bound", "POST", "/v1/wallets", {"customer_id": AT_BOUND, "currency": "eur"}),
            ("event ids at the bound", "POST", "/v1/events",
             {**EVENT, "event_id": AT_BOUND, "event_name": AT_BOUND, "source": "s" * bounds.NAME_MAX_LENGTH}),
            ("idempotency_key at the bound", "POST", f"/v1/wallets/{stage.wallet_id}/top-up",
             {**GRANT, "idempotency_key": "k" * bounds.IDEMPOTENCY_KEY_MAX_LENGTH}),
        ])
        missing = await stage.client.get(f"/v1/wallets/{AT_BOUND}/balance/real-time")
        assert_refused("wallet path at the bound", missing, 404, "not_found")
        await stage.assert_neighbour_folds()


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def metadata_cases(method: str, url: str, base: dict[str, Any]) -> list[Case]:
    too_many = {f"k{i}": "v" for i in range(bounds.METADATA_MAX_ENTRIES + 1)}
    bad_maps: list[tuple[str, dict[str, str]]] = [
        ("too many entries", too_many), ("key too long", {"k" * (bounds.METADATA_KEY_MAX_LENGTH + 1): "v"}),
        ("empty key", {"": "v"}), ("value too long", {"k": "v" * (bounds.METADATA_VALUE_MAX_LENGTH + 1)}),
    ]
    bad_maps += [(f"key with {c!r}", {f"a{c}b": "v"}) for c in CONTROLS]
    bad_maps.append(("key ending in a newline", {"ab\n": "v"}))
    cases: list[Case] = [(f"{url} metadata {name}", method, url, {**base, "metadata": m}) for name, m in bad_maps]
    cases.append((f"{url} description too long", method, url,
                  {**base, "description": "d" * (bounds.DESCRIPTION_MAX_LENGTH + 1)}))
    return cases


def property_cases() -> list[Case]:
    bad: list[tuple[str, Any]] = [
        ("too many", {f"p{i}": 1 for i in range(bounds.PROPERTIES_MAX_ENTRIES + 1)}),
        ("key too long", {"p" * (bounds.PROPERTY_KEY_MAX_LENGTH + 1): 1}), ("empty key", {"": 1}),
        ("string too long", {"p": "v" * (bounds.PROPERTY_VALUE_MAX_LENGTH + 1)}),
        ("2**63", {"p": 2**63}), ("2**64+1", {"p": 2**64 + 1}), ("-(2**63)-1", {"p": -(2**63) - 1}),
        ("nested object", {"p": {"q": 1}}),
    ]
    bad += [(f"key with {c!r}", {f"a{c}b": 1}) for c in CONTROLS] + [("key ending in a newline", {"ab\n": 1})]
    cases: list[Case] = [(f"properties {name}", "POST", "/v1/events", {**EVENT, "properties": p}) for name, p in bad]
    event = b'{"event_name":"api_call","external_customer_id":"' + HOSTILE.encode() + b'","properties":{"p":'
    cases += [
        ("float beyond range", "POST", "/v1/events", event + b"1e400}}"),
        ("1,000-deep array", "POST", "/v1/events", event + deep(1000) + b"}}"),
        ("1,000-deep array, unknown field", "POST", "/v1/events", event + b'1},"x":' + deep(1000) + b"}"),
        ("bulk property 2**64+1", "POST", "/v1/events/bulk",
         {"events": [EVENT, {**EVENT, "properties": {"p": 2**64 + 1}}]}),
    ]
    return cases


def price_size_cases() -> list[Case]:
    tier = {"unit_amount": "1"}
    bad: list[tuple[str, dict[str, Any]]] = [
        ("too many filters", {"filters": {f"f{i}": ["a"] for i in range(bounds.FILTERS_MAX_ENTRIES + 1)}}),
        ("too many filter values", {"filters": {"f": ["a"] * (bounds.FILTER_VALUES_MAX_ENTRIES + 1)}}),
        ("filter key with a newline", {"filters": {"a\nb": ["a"]}}),
        ("aggregation field too long", {"aggregation": {"type": "SUM",
                                                        "field": "f" * (bounds.PROPERTY_KEY_MAX_LENGTH + 1)}}),
        ("too many tiers", {"billing_model": "TIERED", "tiers": [tier] * (bounds.TIERS_MAX_ENTRIES + 1)}),
    ]
    return [(f"price {name}", "POST", "/v1/prices", {**PRICE, **change}) for name, change in bad]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast_path", "fastapi"])
async def test_metadata_descriptions_names_and_properties_are_bounded(
    clean_redis: str, aredis: Redis, fast_path: bool
) -> None:
    async with staged(clean_redis, aredis, fast_path) as stage:
        wallet = f"/v1/wallets/{stage.wallet_id}"
        cases = metadata_cases("POST", "/v1/wallets", {"customer_id": "cust_other", "currency": "USD"})
        cases += metadata_cases("PUT", wallet, {})
        cases += metadata_cases("POST", f"{wallet}/top-up", GRANT)
        cases += metadata_cases("POST", f"{wallet}/debit", {"credits": "1"})
        cases += text_cases("name", "PUT", wallet, {}, "n" * (bounds.NAME_MAX_LENGTH + 1))
        cases += property_cases() + price_size_cases()
        await refuse_all(stage, cases)
        bulk = b'{"events":[{"event_name":"api_call","external_customer_id":"c"},{"event_name":"api_call",' \
               b'"external_customer_id":"c","properties":{"p":' + deep(1000) + b"}}]}"
        reply = await stage.client.post("/v1/events/bulk", content=bulk)
        assert_refused("bulk with a 1,000-deep array", reply)
        assert list(reply.json()["details"]["context"]["events"]) == ["1"], reply.text
        await stage.assert_nothing_written()
        full = {f"{i:0{bounds.METADATA_KEY_MAX_LENGTH}d}": "v" * bounds.METADATA_VALUE_MAX_LENGTH
                for i in range(bounds.METADATA_MAX_ENTRIES)}
        properties: dict[str, Any] = {f"p{i}": i for i in range(bounds.PROPERTIES_MAX_ENTRIES - 3)}
        properties |= {"max": bounds.PROPERTY_INT_MAX, "min": bounds.PROPERTY_INT_MIN,
                       "p" * bounds.PROPERTY_KEY_MAX_LENGTH: "v" * bounds.PROPERTY_VALUE_MAX_LENGTH}
        await accept_all(stage, [
            ("metadata at the bounds", "PUT", wallet, {"metadata": full, "name": "n" * bounds.NAME_MAX_LENGTH,
                                                       "description": "d" * bounds.DESCRIPTION_MAX_LENGTH}),
            ("properties at the bounds", "POST", "/v1/events", {**EVENT, "properties": properties}),
        ])
        await stage.assert_neighbour_folds()


OUT_OF_RANGE = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1969-12-31T23:59:59Z",
                "2200-01-01T00:00:00Z", "2200-01-01T00:59:59+01:00x")
LAST_INSTANT = "2199-12-31T23:59:59Z"


def timestamp_cases(wallet_id: str, value: str) -> list[Case]:
    anchor = {"anchor": value, "period": {"unit": "day"}}
    return [
        (f"usage timestamp {value}", "POST", "/v1/events", {**EVENT, "timestamp": value}),
        (f"bulk timestamp {value}", "POST", "/v1/events/bulk", {"events": [{**EVENT, "timestamp": value}]}),
        (f"expiry_date_utc {value}", "POST", f"/v1/wallets/{wallet_id}/top-up", {**GRANT, "expiry_date_utc": value}),
        (f"initial_credits_expiry_date_utc {value}", "POST", "/v1/wallets",
         {"customer_id": "cust_t", "currency": "USD", "initial_credits_to_load": "1",
          "initial_credits_expiry_date_utc": value}),
        (f"billing anchor {value}", "PUT", f"/v1/customers/{HOSTILE}/billing", anchor),
        (f"effective_from {value}", "POST", "/v1/prices", {**PRICE, "effective_from": value}),
        (f"prices at {value}", "GET", f"/v1/prices?at={value.replace('+', '%2B')}", None),
    ]


async def test_every_timestamp_a_caller_sends_lies_within_the_bounds(clean_redis: str, aredis: Redis) -> None:
    async with staged(clean_redis, aredis) as stage:
        cases = [case for value in OUT_OF_RANGE for case in timestamp_cases(stage.wallet_id, value)]
        cases += [(f"initial_credits_to_load_expiry_date {n}", "POST", "/v1/wallets",
                   {"customer_id": "cust_t", "currency": "USD", "initial_credits_to_load": "1",
                    "initial_credits_to_load_expiry_date": n})
                  for n in (10101, 99991231, 19691231, 22000101, 2**64 + 1, -1)]
        cases += [(f"period count {n}", "PUT", f"/v1/customers/{HOSTILE}/billing",
                   {"anchor": "2030-01-01T00:00:00Z", "period": {"unit": "day", "count": n}})
                  for n in (0, -1, bounds.PERIOD_COUNT_MAX + 1, 2**64 + 1)]
        cases.append(("prices at, too long", "GET", "/v1/prices?at=" + "1" * (bounds.TIMESTAMP_MAX_LENGTH + 1), None))
        await refuse_all(stage, cases)
        await accept_all(stage, [
            ("expiry at the last instant", "POST", f"/v1/wallets/{stage.wallet_id}/top-up",
             {**GRANT, "expiry_date_utc": LAST_INSTANT}),
            ("usage at the first instant", "POST", "/v1/events", {**EVENT, "timestamp": "1970-01-01T00:00:00Z"}),
            ("prices at the first instant", "GET", "/v1/prices?at=1970-01-01T00:00:00Z", None),
            ("effective_from at the last instant", "POST", "/v1/prices", {**PRICE, "effective_from": LAST_INSTANT}),
            ("expiry date at the last day", "POST", "/v1/wallets", {"customer_id": "cust_t", "currency": "USD",
             "initial_credits_to_load": "1", "initial_credits_to_load_expiry_date": 21991231}),
            ("anchor at the first instant, longest period", "PUT", f"/v1/customers/{HOSTILE}/billing",
             {"anchor": "1970-01-01T00:00:00Z", "period": {"unit": "month", "count": bounds.PERIOD_COUNT_MAX}}),
        ])
        await stage.assert_neighbour_folds()


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast_path", "fastapi"])
async def test_query_parameters_are_bounded_on_both_ways_of_serving(
    clean_redis: str, aredis: Redis, fast_path: bool
) -> None:
    async with staged(clean_redis, aredis, fast_path) as stage:
        balance = f"/v1/wallets/{stage.wallet_id}/balance/real-time"
        huge = bounds.PAGE_OFFSET_MAX + 1
        cases: list[Case] = [(f"balance {q}", "GET", f"{balance}?{q}", None) for q in (
            "expand=bogus", "expand=credits_available_breakdown,bogus", "expand=,", "from_cache=", "from_cache=maybe")]
        cases += [(f"deliveries {q}", "GET", f"/v1/webhooks/deliveries?{q}", None) for q in (
            f"offset={huge}", "offset=10000000000000000000", "offset=-1", "limit=0",
            f"limit={bounds.DELIVERIES_PAGE_MAX + 1}")]
        cases += [(f"transactions {q}", "GET", f"/v1/wallets/{stage.wallet_id}/transactions?{q}", None) for q in (
            f"offset={huge}", "offset=10000000000000000000", f"limit={bounds.TRANSACTIONS_PAGE_MAX + 1}")]
        await refuse_all(stage, cases)
        await accept_all(stage, [(f"{q} accepted", "GET", q, None) for q in (
            f"{balance}?expand=", f"{balance}?expand=credits_available_breakdown&from_cache=t",
            f"/v1/webhooks/deliveries?offset={bounds.PAGE_OFFSET_MAX}&limit={bounds.DELIVERIES_PAGE_MAX}",
            f"/v1/wallets/{stage.wallet_id}/transactions?offset={bounds.PAGE_OFFSET_MAX}")])
        await stage.assert_neighbour_folds()


async def test_a_refused_wallet_creation_leaves_no_wallet_index(clean_redis: str, aredis: Redis) -> None:
    async with staged(clean_redis, aredis) as stage:
        wallet = {"customer_id": HOSTILE, "currency": "USD"}
        await refuse_all(stage, [("second PRE_PAID wallet in USD", "POST", "/v1/wallets", wallet)],
                         409, "already_exists")
        await refuse_all(stage, [
            ("expiry in the past", "POST", "/v1/wallets", {**wallet, "currency": "EUR", "initial_credits_to_load": "1",
                                                           "initial_credits_expiry_date_utc": "2001-01-01T00:00:00Z"}),
            ("auto top-up without amount", "POST", "/v1/wallets",
             {**wallet, "currency": "EUR", "auto_topup": {"enabled": True, "threshold": 1}}),
        ])
        await stage.assert_neighbour_folds()


async def test_another_tenants_wallet_and_a_missing_id_take_the_same_path(
    clean_redis: str, aredis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    find_wallet = EventStore.find_wallet

    async def counted(store: EventStore, wallet_id: str) -> AccountRef | None:
        reads.append(wallet_id)
        return await find_wallet(store, wallet_id)

    monkeypatch.setattr(EventStore, "find_wallet", counted)
    async with staged(clean_redis, aredis) as stage:
        foreign = {"x-api-key": OTHER_KEY}
        for _ in range(2):
            for wallet_id in (stage.wallet_id, "wallet_missing"):
                reads.clear()
                reply = await stage.client.get(f"/v1/wallets/{wallet_id}/balance/real-time", headers=foreign)
                assert_refused(wallet_id, reply, 404, "not_found")
                assert reply.json()["message"] == f"wallet {wallet_id} not found"
                assert reads == [wallet_id], "each 404 reads the wallet index once, cached owner or not"
        reads.clear()
        own = [(await stage.client.get(f"/v1/wallets/{stage.wallet_id}")).status_code for _ in range(2)]
        assert own == [200, 200] and reads == [stage.wallet_id], "the owner's own wallet is cached once read"
