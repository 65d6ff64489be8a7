"""No body field is accepted silently: on every operation of the OpenAPI document that reads a body, a field tally
does not know, at the top or nested, is a 400 naming it and writes nothing, while the same body without it is
accepted. Flexprice fields tally does not honour are accepted only empty (null, "" or [])."""

from typing import Any

from redis.asyncio import Redis

from tests.support.harness import running_app

SECRET = "whsec_" + "c2VuZGVyLXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk="
EVENT = {"event_name": "api_call", "external_customer_id": "cust_f", "event_id": "e-fields"}
PRICE = {"event_name": "api_call", "currency": "USD", "aggregation": {"type": "COUNT"}, "billing_model": "FLAT_FEE",
         "amount": "1"}
ALERTS = {"alert_enabled": True, "critical": {"threshold": 5, "condition": "below"}}


def bodies(wallet: str) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(method, documented path) -> (URL, a body tally accepts)."""
    return {
        ("POST", "/v1/customers"): ("/v1/customers", {"external_id": "ext-f"}),
        ("PUT", "/v1/customers"): ("/v1/customers?external_customer_id=ext-known", {"name": "N"}),
        ("POST", "/v1/customers/search"): ("/v1/customers/search", {"limit": 5}),
        ("POST", "/v1/wallets"): ("/v1/wallets", {"customer_id": "cust_f", "currency": "USD",
                                                  "alert_settings": ALERTS}),
        ("PUT", "/v1/wallets/{wallet_id}"): (f"/v1/wallets/{wallet}", {"name": "n", "alert_settings": ALERTS}),
        ("POST", "/v1/wallets/{wallet_id}/top-up"): (f"/v1/wallets/{wallet}/top-up", {
            "credits_to_add": "5", "transaction_reason": "FREE_CREDIT_GRANT"}),
        ("POST", "/v1/wallets/{wallet_id}/debit"): (f"/v1/wallets/{wallet}/debit", {"credits": "1"}),
        ("POST", "/v1/events"): ("/v1/events", EVENT),
        ("POST", "/v1/events/bulk"): ("/v1/events/bulk", {"events": [EVENT]}),
        ("POST", "/v1/prices"): ("/v1/prices", PRICE),
        ("PUT", "/v1/customers/{customer_id}/billing"): ("/v1/customers/cust_f/billing", {
            "anchor": "2026-01-01T00:00:00Z", "period": {"unit": "month", "count": 1}}),
        ("POST", "/v1/customers/{customer_id}/invoices/{invoice_id}/payments"): (
            "/v1/customers/cust_f/invoices/inv_none/payments", {"amount": "1"}),
        ("POST", "/v1/wallets/transactions/search"): ("/v1/wallets/transactions/search", {"id": wallet}),
        ("POST", "/v1/events/query"): ("/v1/events/query", {"external_customer_id": "cust_f"}),
        ("POST", "/v1/wallets/search"): ("/v1/wallets/search", {"limit": 5}),
        ("POST", "/v1/alerts/search"): ("/v1/alerts/search", {"sort": [{"field": "created_at"}]}),
        ("POST", "/v1/webhooks/endpoints"): ("/v1/webhooks/endpoints", {"url": "https://8.8.8.8/hook",
                                                                        "secret": SECRET}),
    }


def with_unknown(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The body with an unknown field at the top, and inside each object it holds (one level down, and inside
    the first element of a list of objects)."""
    variants = [{**body, "surprise_field": 1}]
    for name, value in body.items():
        if isinstance(value, dict):
            variants.append({**body, name: {**value, "surprise_field": 1}})
            variants.extend({**body, name: {**value, inner: {**nested, "surprise_field": 1}}}
                            for inner, nested in value.items() if isinstance(nested, dict))
        if isinstance(value, list) and value and isinstance(value[0], dict):
            variants.append({**body, name: [{**value[0], "surprise_field": 1}, *value[1:]]})
    return variants


async def test_every_body_refuses_an_unknown_field_and_writes_nothing(clean_redis: str, aredis: Redis) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet = (await client.post("/v1/wallets", json={"customer_id": "cust_f", "currency": "USD",
                                                         "initial_credits_to_load": "10"})).json()["id"]
        assert (await client.post("/v1/customers", json={"external_id": "ext-known"})).status_code == 201
        document = (await client.get("/openapi.json")).json()
        documented = {(method.upper(), path) for path, item in document["paths"].items()
                      for method, operation in item.items() if isinstance(operation, dict)
                      and "requestBody" in operation}
        table = bodies(wallet)
        assert documented == set(table), "every operation that reads a body has a case here"
        before = sorted(await aredis.keys("*"))
        for (method, _), (url, body) in table.items():
            for variant in with_unknown(body):
                response = await client.request(method, url, json=variant)
                assert response.status_code == 400, (method, url, variant, response.text)
                assert "surprise_field" in response.text, response.text  # named (bulk: per event, in details)
        assert sorted(await aredis.keys("*")) == before, "a refused request wrote something"
        for (method, _), (url, body) in table.items():
            accepted = await client.request(method, url, json=body)
            assert accepted.status_code != 400 and accepted.status_code < 500, (method, url, accepted.text)


async def test_a_flexprice_field_tally_does_not_honour_is_accepted_only_empty(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        wallet = {"customer_id": "cust_u", "currency": "USD"}
        refused = [
            await client.post("/v1/wallets", json={**wallet, "price_unit": "tokens"}),
            await client.post("/v1/customers", json={"external_id": "e1", "tax_rate_overrides": [{"id": "t"}]}),
            await client.post("/v1/customers/search", json={"filters": [{"field": "name"}]}),
        ]
        accepted = [
            await client.post("/v1/wallets", json={**wallet, "price_unit": ""}),
            await client.post("/v1/customers", json={"external_id": "e2", "tax_rate_overrides": []}),
            await client.post("/v1/customers/search", json={"filters": None}),
        ]
    assert [r.status_code for r in refused] == [400, 400, 400]
    assert all(r.json()["code"] == "validation_error" for r in refused)
    assert [r.status_code for r in accepted] == [200, 201, 200], [r.text for r in accepted]
