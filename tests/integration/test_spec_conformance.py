"""Real responses of the in-process app on a real Redis, validated against spec/wallet-balance.openapi.yaml."""

import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from redis.asyncio import Redis

from api import asof, wallets
from api.app import create_app
from domain.identity import AccountRef
from tests.support import contract
from tests.support.components import api_config
from tests.support.harness import API_KEY, PARTITIONS, PRINCIPALS, running_app, wait_folded

BALANCE = "WalletBalanceResponse"
ERROR = "errors.ErrorResponse"
TENANT, ENVIRONMENT = "tenant_a", "env_a"
BREAKDOWN = "credits_available_breakdown"
# Sent only when asked for (expand) or configured; every other property of the spec must be on every response.
CONDITIONAL = {BREAKDOWN, "alert_settings", "auto_topup"}


def spec_fields(name: str) -> set[str]:
    return set(contract.component(name)["properties"])


def conforms(name: str, body: object) -> None:
    found = contract.problems(name, body)
    assert not found, f"{name} violations:\n" + "\n".join(found) + f"\nin {body!r}"


async def ok(response: Awaitable[httpx.Response]) -> dict[str, Any]:
    reply = await response
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def create(client: httpx.AsyncClient, customer: str, **body: Any) -> str:
    wallet = await ok(client.post("/v1/wallets", json={"customer_id": customer, "currency": "USD", **body}))
    wallet_id: str = wallet["id"]
    return wallet_id


async def top_up(client: httpx.AsyncClient, wallet_id: str, credits: str, reason: str) -> None:
    await ok(client.post(f"/v1/wallets/{wallet_id}/top-up",
                         json={"credits_to_add": credits, "transaction_reason": reason}))


async def balance(client: httpx.AsyncClient, wallet_id: str, **params: str) -> dict[str, Any]:
    return await ok(client.get(f"/v1/wallets/{wallet_id}/balance/real-time", params=params))


async def funded(client: httpx.AsyncClient, customer: str, **body: Any) -> str:
    """A wallet with 10 purchased and 4 free credits."""
    wallet_id = await create(client, customer, **body)
    await top_up(client, wallet_id, "10", "PURCHASED_CREDIT_DIRECT")
    await top_up(client, wallet_id, "4", "FREE_CREDIT_GRANT")
    return wallet_id


# Each scenario drives the app into a state and returns (balance response, fields expected in it).
Scenario = Callable[[httpx.AsyncClient, Redis], Awaitable[tuple[dict[str, Any], dict[str, Any]]]]


async def fresh(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    wallet_id = await create(client, "cust_fresh")
    return await balance(client, wallet_id), {
        "credit_balance": "0", "balance": "0", "real_time_balance": "0", "real_time_credit_balance": "0",
        "current_period_usage": "0", "unpaid_invoices_amount": "0", "wallet_status": "active",
        "wallet_type": "PRE_PAID", "status": "published", "alert_state": "ok", "is_cached_fallback": False,
    }


async def topped_up(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    wallet_id = await funded(client, "cust_topped", conversion_rate="0.5")
    return await balance(client, wallet_id), {
        "credit_balance": "14", "balance": "7", "real_time_balance": "7", "real_time_credit_balance": "14",
        "conversion_rate": "0.5", "topup_conversion_rate": "0.5",
    }


async def expanded(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    wallet_id = await funded(client, "cust_expanded")
    return await balance(client, wallet_id, expand=BREAKDOWN), {
        "credit_balance": "14", BREAKDOWN: {"free": "4", "purchased": "10"},
    }


async def cached(client: httpx.AsyncClient, redis: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    wallet_id = await funded(client, "cust_cached", conversion_rate="2")
    await wait_folded(redis, AccountRef(TENANT, ENVIRONMENT, "cust_cached"))
    exact = await balance(client, wallet_id, expand=BREAKDOWN)
    body = await balance(client, wallet_id, expand=BREAKDOWN, from_cache="true")
    assert {**body, "is_cached_fallback": False} == exact, "a cached read after catch-up must equal the exact one"
    return body, {"is_cached_fallback": True, "credit_balance": "14", "balance": "28",
                  BREAKDOWN: {"free": "4", "purchased": "10"}}


async def post_paid(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    wallet_id = await funded(client, "cust_postpaid", wallet_type="POST_PAID", conversion_rate="3")
    return await balance(client, wallet_id), {
        "wallet_type": "POST_PAID", "credit_balance": "14", "balance": "42", "real_time_balance": "42",
        "real_time_credit_balance": "14",
    }


async def terminated(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    wallet_id = await funded(client, "cust_terminated")
    await ok(client.post(f"/v1/wallets/{wallet_id}/terminate"))
    return await balance(client, wallet_id, expand=BREAKDOWN), {
        "wallet_status": "closed", "credit_balance": "0", "balance": "0", "real_time_balance": "0",
        BREAKDOWN: {"free": "0", "purchased": "0"},
    }


async def frozen(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    wallet_id = await funded(client, "cust_frozen")
    await ok(client.post(f"/v1/wallets/{wallet_id}/freeze"))
    return await balance(client, wallet_id), {"wallet_status": "frozen", "credit_balance": "14"}


async def alerting(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = {"alert_enabled": True, "critical": {"threshold": 5, "condition": "below"},
                "warning": {"threshold": 20, "condition": "below"}, "info": {"threshold": 50.5, "condition": "below"}}
    wallet_id = await funded(client, "cust_alerts", alert_settings=settings)
    return await balance(client, wallet_id), {"alert_state": "warning", "alert_settings": settings}


async def auto_topping(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    # Created with 4 free credits (above the threshold of 2 from its first event), then 10 purchased: no automatic
    # top-up is armed, so none changes the figures under test. (A wallet created empty would arm one at once.)
    wallet_id = await create(client, "cust_autotopup", initial_credits_to_load="4",
                             auto_topup={"enabled": True, "threshold": 2, "amount": 10, "invoicing": False})
    await top_up(client, wallet_id, "10", "PURCHASED_CREDIT_DIRECT")
    return await balance(client, wallet_id), {
        "credit_balance": "14",
        # cooldown_seconds and cooldown extend types.AutoTopup (the spec's object allows extra properties)
        "auto_topup": {"enabled": True, "threshold": 2, "amount": 10, "invoicing": False, "cooldown_seconds": 0,
                       "cooldown": {"value": 0, "unit": "SECOND"}},
    }


async def configured(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    wallet_id = await funded(client, "cust_configured", conversion_rate="2", topup_conversion_rate="4",
                             name="ops", description="for usage", metadata={"team": "billing"},
                             config={"allowed_price_types": ["USAGE", "FIXED"]})
    return await balance(client, wallet_id), {
        "name": "ops", "description": "for usage", "metadata": {"team": "billing"},
        "config": {"allowed_price_types": ["USAGE", "FIXED"]}, "conversion_rate": "2",
        "topup_conversion_rate": "4", "credit_balance": "14", "balance": "28",
    }


async def as_of_now(client: httpx.AsyncClient, _: Redis) -> tuple[dict[str, Any], dict[str, Any]]:
    wallet_id = await funded(client, "cust_as_of", conversion_rate="2")
    exact = await balance(client, wallet_id, expand=BREAKDOWN)
    at = datetime.now(UTC).isoformat()  # both top-ups were appended by then
    body = await ok(client.get(f"/v1/wallets/{wallet_id}/balance/as-of", params={"at": at, "expand": BREAKDOWN}))
    return body, {"is_cached_fallback": False, "credit_balance": "14", "balance": "28",
                  "read_position": exact["read_position"], BREAKDOWN: {"free": "4", "purchased": "10"}}


SCENARIOS: dict[str, Scenario] = {
    "fresh": fresh, "topped_up": topped_up, "expanded": expanded, "cached": cached, "post_paid": post_paid,
    "terminated": terminated, "frozen": frozen, "alert_settings": alerting, "auto_topup": auto_topping,
    "configured": configured, "as_of": as_of_now,
}


@pytest.mark.parametrize("name", SCENARIOS)
async def test_balance_responses_conform_to_the_spec(name: str, clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis) as client:
        body, expected = await SCENARIOS[name](client, aredis)
    conforms(BALANCE, body)
    missing = spec_fields(BALANCE) - CONDITIONAL - set(body)
    assert not missing, f"spec fields missing from the response: {sorted(missing)}"
    assert CONDITIONAL & set(body) == CONDITIONAL & set(expected), "sent only when expanded or configured"
    assert (body["tenant_id"], body["environment_id"]) == (TENANT, ENVIRONMENT)
    assert {key: body.get(key) for key in expected} == expected


# --- error responses --------------------------------------------------------------------------------------------

ErrorCase = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]
ERROR_CASES: dict[str, tuple[ErrorCase, int, str]] = {
    "unknown_wallet": (lambda c, _: c.get("/v1/wallets/wallet_nope/balance/real-time"), 404, "not_found"),
    "bad_from_cache": (lambda c, w: c.get(f"/v1/wallets/{w}/balance/real-time", params={"from_cache": "maybe"}),
                       400, "validation_error"),
    "bad_decimal": (lambda c, w: c.post(f"/v1/wallets/{w}/top-up", json={
        "credits_to_add": "ten", "transaction_reason": "PURCHASED_CREDIT_DIRECT"}), 400, "validation_error"),
    "not_json": (lambda c, w: c.post(f"/v1/wallets/{w}/top-up", content=b"{nope"), 400, "validation_error"),
    "frozen_top_up": (lambda c, w: c.post(f"/v1/wallets/{w}/top-up", json={
        "credits_to_add": "1", "transaction_reason": "PURCHASED_CREDIT_DIRECT"}), 400, "invalid_operation"),
    "no_key": (lambda c, w: c.get(f"/v1/wallets/{w}/balance/real-time", headers={"x-api-key": ""}),
               401, "permission_denied"),
    "wrong_key": (lambda c, w: c.get(f"/v1/wallets/{w}/balance/real-time", headers={"x-api-key": "nope"}),
                  401, "permission_denied"),
    "as_of_neither": (lambda c, w: c.get(f"/v1/wallets/{w}/balance/as-of"), 400, "validation_error"),
    "as_of_future": (lambda c, w: c.get(f"/v1/wallets/{w}/balance/as-of", params={"at": "2199-01-01T00:00:00Z"}),
                     400, "validation_error"),
    "as_of_before_the_wallet": (lambda c, w: c.get(f"/v1/wallets/{w}/balance/as-of",
                                                   params={"at": "2000-01-01T00:00:00Z"}), 404, "not_found"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
async def test_error_responses_conform_to_the_spec(case: str, clean_redis: str) -> None:
    send, status, code = ERROR_CASES[case]
    async with running_app(clean_redis) as client:
        wallet_id = await create(client, "cust_errors")
        if case == "frozen_top_up":
            await ok(client.post(f"/v1/wallets/{wallet_id}/freeze"))
        reply = await send(client, wallet_id)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    conforms(ERROR, body)
    assert set(body) == spec_fields(ERROR)
    assert body["code"] in contract.component(ERROR)["properties"]["code"]["enum"]
    assert (body["code"], body["http_status_code"]) == (code, status)
    assert body["message"]


# --- negative controls: the validator can fail ----------------------------------------------------------------

async def real_balance(redis_url: str) -> dict[str, Any]:
    async with running_app(redis_url) as client:
        wallet_id = await funded(client, "cust_controls", alert_settings={
            "alert_enabled": True, "critical": {"threshold": 5, "condition": "below"}})
        return await balance(client, wallet_id, expand=BREAKDOWN)


BAD_BALANCES: dict[str, tuple[tuple[str, ...], object]] = {
    "balance_as_number": (("balance",), 25),
    "credit_balance_as_number": (("credit_balance",), 14.0),
    "impossible_date": (("created_at",), "2026-02-30T00:00:00Z"),
    "date_without_zone": (("updated_at",), "2026-01-01T00:00:00"),
    "date_with_a_space": (("balance_updated_at",), "2026-01-01 00:00:00Z"),
    "not_a_date": (("balance_updated_at",), "yesterday"),
    "unknown_wallet_status": (("wallet_status",), "paused"),
    "unknown_alert_state": (("alert_state",), "red"),
    "threshold_as_string": (("alert_settings", "critical", "threshold"), "5"),
    "unknown_condition": (("alert_settings", "critical", "condition"), "under"),
    "breakdown_as_number": ((BREAKDOWN, "free"), 4),
    "metadata_value_as_number": (("metadata",), {"team": 1}),
    "unknown_price_type": (("config",), {"allowed_price_types": ["SOMETIMES"]}),
}


def mutated(body: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    copied = copy.deepcopy(body)
    node = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copied


async def test_the_validator_rejects_each_broken_balance(clean_redis: str) -> None:
    body = await real_balance(clean_redis)
    conforms(BALANCE, body)  # the positive control: the untouched response passes
    verdicts = {name: contract.problems(BALANCE, mutated(body, path, value))
                for name, (path, value) in BAD_BALANCES.items()}
    for name, (path, _) in BAD_BALANCES.items():
        found = verdicts[name]
        assert len(found) == 1 and found[0].startswith("/".join(path)), f"{name}: {found or 'accepted'}"


def test_the_date_time_format_is_checked_strictly() -> None:
    good = ["2026-11-26T08:20:33.762082Z", "2026-01-01T00:00:00+05:30", "2026-01-01t00:00:00.123456789z"]
    bad = ["2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01", "2026-01-01T00:00Z", "1767225600"]
    assert [v for v in good if not contract.is_rfc3339(v)] == []
    assert [v for v in bad if contract.is_rfc3339(v)] == []
    schema_errors = contract.problems(BALANCE, {"created_at": "2026-13-01T00:00:00Z"})
    assert schema_errors and "date-time" in schema_errors[0]


def test_the_validator_rejects_broken_errors() -> None:
    good = {"code": "not_found", "message": "wallet x not found", "http_status_code": 404,
            "details": {"context": {"wallet_id": "x"}}}
    conforms(ERROR, good)
    broken = {
        "unknown_code": {**good, "code": "teapot"},
        "status_as_string": {**good, "http_status_code": "404"},
        "detail_not_an_object": {**good, "details": {"context": "x"}},
        "message_as_number": {**good, "message": 404},
    }
    accepted = [name for name, body in broken.items() if not contract.problems(ERROR, body)]
    assert not accepted, f"the validator accepted broken errors: {accepted}"


def test_every_ref_in_the_spec_resolves() -> None:
    resolver = contract.registry().resolver(base_uri=contract.SPEC_URI)
    refs = contract.refs_in(contract.spec())
    assert f"#/components/schemas/{BALANCE}" in refs and len(refs) > 10
    for ref in refs:
        assert isinstance(resolver.lookup(ref).contents, dict), ref


# --- the app's own OpenAPI document ----------------------------------------------------------------------------


def openapi_client() -> httpx.AsyncClient:
    """The app without its lifespan (the document needs no Redis); app errors become 500s, not exceptions."""
    config = api_config(PRINCIPALS, PARTITIONS, request_log=False)
    app = create_app(config, lambda: Redis())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://tally", headers={"x-api-key": API_KEY})


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref: str = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = document
        for part in ref[2:].split("/"):
            assert part in target, f"dangling $ref {ref}"
            target = target[part]
        node = target
    return node


def json_types(document: dict[str, Any], node: dict[str, Any]) -> set[str]:
    node = resolve(document, node)
    options: list[dict[str, Any]] = node.get("anyOf") or node.get("oneOf") or []
    if options:
        return {t for option in options for t in json_types(document, option)}
    if "enum" in node and "type" not in node:
        return {"string"} if all(isinstance(v, str) for v in node["enum"]) else set()
    kind = node.get("type", "object" if "properties" in node else "")
    return {kind} if isinstance(kind, str) else set(kind)


def v1_operations() -> list[tuple[str, str]]:
    return sorted((route.path, method.lower()) for router in (wallets.router, asof.router)
                  for route in router.routes if isinstance(route, APIRoute) for method in route.methods or ())


async def test_openapi_json_answers_on_the_first_request() -> None:
    async with openapi_client() as client:
        reply = await client.get("/openapi.json")
    assert reply.status_code == 200, reply.text


async def test_openapi_json_describes_every_v1_route_and_the_spec_balance() -> None:
    async with openapi_client() as client:
        reply = await client.get("/openapi.json")
    assert reply.status_code == 200, reply.text
    document = reply.json()
    operations = v1_operations()
    assert len(operations) >= 10
    for path, method in operations:
        operation = document["paths"].get(path, {}).get(method)
        assert operation is not None, f"{method.upper()} {path} is not in /openapi.json"
        for status in ("200", "400", "401", "500", "503"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            resolve(document, schema)
    for ref in contract.refs_in(document):
        resolve(document, {"$ref": ref})

    route = document["paths"]["/v1/wallets/{wallet_id}/balance/real-time"]["get"]
    as_of = document["paths"]["/v1/wallets/{wallet_id}/balance/as-of"]["get"]
    assert as_of["responses"]["200"] == route["responses"]["200"], "as-of answers the same balance schema"
    served = resolve(document, route["responses"]["200"]["content"]["application/json"]["schema"])
    promised = contract.component(BALANCE)["properties"]
    assert not set(promised) - set(served["properties"]), "balance schema lacks spec fields"
    for field, spec_schema in promised.items():
        wanted = json_types(contract.spec(), spec_schema)
        assert wanted, f"{field}: the spec gives no type to compare with"
        assert wanted <= json_types(document, served["properties"][field]), f"{field}: type differs from the spec"
    error = resolve(document, route["responses"]["404"]["content"]["application/json"]["schema"])
    assert set(error["properties"]) >= spec_fields(ERROR)
