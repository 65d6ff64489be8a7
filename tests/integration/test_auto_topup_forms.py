"""Auto top-up settings in both forms on a real Redis: Flexprice's `cooldown {value, unit}` becomes exact seconds
(shown back as cooldown_seconds and in the largest unit), `cooldown_seconds` keeps working, both at once is a 400;
unknown units, fractions of a second and out-of-bounds values are a 400 that changes nothing; threshold and amount
are exact whether sent as numbers or decimal strings."""

from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.bounds import COOLDOWN_MAX_SECONDS
from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from tests.support.harness import PARTITIONS, running_app

CUSTOMER = "cust_cooldown"
TOPUP = {"enabled": True, "threshold": "10", "amount": "50"}


@pytest.mark.parametrize(("form", "seconds", "shown"), [
    ({"cooldown": {"value": 90, "unit": "SECOND"}}, 90, {"value": 90, "unit": "SECOND"}),
    ({"cooldown": {"value": 2, "unit": "minute"}}, 120, {"value": 2, "unit": "MINUTE"}),
    ({"cooldown": {"value": "1.5", "unit": "HOUR"}}, 5400, {"value": 90, "unit": "MINUTE"}),
    ({"cooldown": {"value": 3, "unit": "DAY"}}, 259_200, {"value": 3, "unit": "DAY"}),
    ({"cooldown": {"value": 2, "unit": "WEEK"}}, 1_209_600, {"value": 2, "unit": "WEEK"}),
    ({"cooldown_seconds": 3600}, 3600, {"value": 1, "unit": "HOUR"}),
    ({}, 0, {"value": 0, "unit": "SECOND"}),
])
async def test_a_cooldown_in_either_form_is_kept_as_exact_seconds(
    clean_redis: str, form: dict[str, Any], seconds: int, shown: dict[str, Any]
) -> None:
    async with running_app(clean_redis, projector=False) as client:
        created = await client.post("/v1/wallets", json={"customer_id": CUSTOMER, "currency": "USD",
                                                         "auto_topup": {**TOPUP, **form}})
        assert created.status_code == 200, created.text
        topup = created.json()["auto_topup"]
        assert topup.get("cooldown_seconds", 0) == seconds and topup["cooldown"] == shown
        updated = await client.put(f"/v1/wallets/{created.json()['id']}",
                                   json={"auto_topup": {**TOPUP, "cooldown": {"value": 1, "unit": "DAY"}}})
        assert updated.status_code == 200 and updated.json()["auto_topup"]["cooldown_seconds"] == 86_400


REFUSED = [
    {"cooldown": {"value": 1, "unit": "MONTH"}}, {"cooldown": {"value": 1, "unit": "FORTNIGHT"}},
    {"cooldown": {"value": "0.5", "unit": "SECOND"}}, {"cooldown": {"value": -1, "unit": "HOUR"}},
    {"cooldown": {"value": COOLDOWN_MAX_SECONDS + 1, "unit": "SECOND"}}, {"cooldown": {"value": 367, "unit": "DAY"}},
    {"cooldown": {"value": "abc", "unit": "DAY"}}, {"cooldown": {"value": 1}}, {"cooldown": {"unit": "DAY"}},
    {"cooldown": {"value": 1, "unit": "DAY", "jitter": 5}},
    {"cooldown_seconds": 60, "cooldown": {"value": 2, "unit": "MINUTE"}},
    {"cooldown_seconds": 60, "cooldown": {"value": 1, "unit": "MINUTE"}},  # even agreeing: one form or the other
    {"cooldown_seconds": -5}, {"threshold": "ten"}, {"amount": "1e999999"}, {"cooldown_minutes": 5},
    {"cooldown": {"value": None, "unit": "DAY"}}, {"cooldown": {"value": " 1", "unit": "DAY"}},
    {"threshold": " 1"}, {"amount": "1_000"}, {"amount": True}, {"threshold": {"value": 1}}, {"amount": "\u0661"},
]


async def test_bad_cooldowns_and_amounts_are_a_400_that_changes_nothing(clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis, projector=False) as client:
        before = sorted(await aredis.keys("*"))
        for form in REFUSED:
            reply = await client.post("/v1/wallets", json={"customer_id": CUSTOMER, "currency": "USD",
                                                           "auto_topup": {**TOPUP, **form}})
            assert reply.status_code == 400 and reply.json()["code"] == "validation_error", (form, reply.text)
        assert sorted(await aredis.keys("*")) == before


@pytest.mark.parametrize(("sent", "exact"), [
    ('"123456789012345.123456789012"', "123456789012345.123456789012"),
    ("123456789012345.123456789012", "123456789012345.123456789012"), ("0.1", "0.1"), ('"-2.5"', "-2.5")])
async def test_threshold_and_amount_are_exact_as_numbers_and_as_strings(
    clean_redis: str, aredis: Redis, sent: str, exact: str
) -> None:
    amount = "100000000000000.000000000001"  # a JSON number: a float would round it
    body = (f'{{"customer_id": "{CUSTOMER}", "currency": "USD", '
            f'"auto_topup": {{"enabled": true, "threshold": {sent}, "amount": {amount}}}}}')
    async with running_app(clean_redis, projector=False) as client:
        created = await client.post("/v1/wallets", content=body, headers={"content-type": "application/json"})
        assert created.status_code == 200, created.text
        read = await EventStore(aredis, Keys(PARTITIONS), 3600).read_account(AccountRef("tenant_a", "env_a",
                                                                                        CUSTOMER))
    topup = read.account.wallets[created.json()["id"]].auto_topup
    assert topup is not None
    assert topup.threshold == Decimal(exact) and topup.amount == Decimal(amount)
