"""The app's /openapi.json says what the responses are: shapes, every error status, the rules of the bodies.

The document is built without Redis (no lifespan); schemathesis checks it against the live app
(tests/integration/test_schemathesis.py), these tests pin the rules that build it.
"""

import re
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from api.app import create_app
from api.body import decode_body
from api.usage_schemas import BillingRequest
from domain.errors import ValidationFailed
from tests.support.components import api_config
from tests.support.harness import API_KEY, PARTITIONS, PRINCIPALS

ERROR = {"$ref": "#/components/schemas/ErrorResponse"}


def app_client() -> httpx.AsyncClient:
    app = create_app(api_config(PRINCIPALS, PARTITIONS, request_log=False), lambda: Redis())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://tally", headers={"x-api-key": API_KEY})


@pytest.fixture
async def document() -> dict[str, Any]:
    async with app_client() as client:
        reply = await client.get("/openapi.json")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in document["paths"].items()
            for method, operation in item.items()]


def error_schema(operation: dict[str, Any], status: str) -> Any:
    return operation["responses"][status]["content"]["application/json"]["schema"]


async def test_every_keyed_operation_documents_its_errors_with_error_response(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        assert "422" not in responses, f"{method} {path}: tally answers 400, never FastAPI's 422"
        if path in ("/healthz", "/readyz"):
            assert operation["security"] == [], f"{path} answers without a key"
            assert {"408", "431"} <= set(responses), f"{path}: the transport's refusals"
            continue
        wanted = {"401", "408", "431", "500", "503"}
        wanted |= {"400"} if operation.get("parameters") or "requestBody" in operation else set()
        wanted |= {"404"} if "{" in path else set()
        wanted |= {"413"} if "requestBody" in operation else set()
        assert wanted <= set(responses), f"{method} {path} lacks {sorted(wanted - set(responses))}"
        for status in wanted:
            assert error_schema(operation, status) == ERROR, f"{method} {path} {status}"
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_commands_document_conflicts_and_operator_routes_forbidden(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path, method in [("/v1/wallets", "post"), ("/v1/wallets/{wallet_id}/top-up", "post"),
                         ("/v1/customers/{customer_id}/billing", "put")]:
        assert error_schema(paths[path][method], "409") == ERROR
    assert "409" not in paths["/v1/events"]["post"]["responses"]
    assert error_schema(paths["/v1/admin/verify"]["post"], "403") == ERROR


async def test_a_customers_wallets_are_an_array_and_a_deleted_endpoint_has_no_body(document: dict[str, Any]) -> None:
    wallets = document["paths"]["/v1/customers/{customer_id}/wallets"]["get"]["responses"]["200"]
    assert wallets["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/WalletResponse"}}
    deleted = document["paths"]["/v1/webhooks/endpoints/{endpoint_id}"]["delete"]["responses"]
    assert "content" not in deleted["204"] and error_schema(
        document["paths"]["/v1/webhooks/endpoints/{endpoint_id}"]["delete"], "404") == ERROR


async def test_business_rules_are_in_the_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    events = schemas["BulkIngestRequest"]["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, 1000)
    assert events["items"] == {"$ref": "#/components/schemas/IngestEventRequest"}
    assert [option["required"] for option in schemas["CreateWalletRequest"]["anyOf"]] == [
        ["customer_id"], ["external_customer_id"]]
    assert schemas["AggregationWire"]["then"]["required"] == ["field"]
    assert schemas["CreatePriceRequest"]["then"]["properties"]["tiers"]["minItems"] == 1
    url = re.compile(schemas["EndpointRequest"]["properties"]["url"]["pattern"])
    assert url.fullmatch("https://example.com:8443/hook?x=1") and not url.fullmatch("http://user@example.com/")


async def test_a_405_names_every_method_of_the_path() -> None:
    async with app_client() as client:
        reply = await client.request("OPTIONS", "/v1/webhooks/endpoints")
    assert reply.status_code == 405
    assert set(reply.headers["allow"].split(", ")) >= {"GET", "POST"}
    assert reply.json()["code"] == "invalid_operation"


def test_an_integer_field_takes_a_number_with_a_zero_fraction_as_json_schema_does() -> None:
    decoder = msgspec.json.Decoder(BillingRequest)
    body = b'{"anchor": "2026-01-01T00:00:00Z", "period": {"unit": "day", "count": %s}}'
    assert decode_body(decoder, body % b"18.0").period.count == 18
    for refused in (b"18.5", b'"18"', b"true"):
        with pytest.raises(ValidationFailed):
            decode_body(decoder, body % refused)


async def test_decimals_are_documented_with_their_grammar_sign_and_bounds(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def pattern(component: str, field: str) -> re.Pattern[str]:
        options = schemas[component]["properties"][field]["anyOf"]
        return re.compile(next(o["pattern"] for o in options if o["type"] == "string"))

    credits_to_add, debit, rate = (pattern("TopUpRequest", "credits_to_add"), pattern("DebitRequest", "credits"),
                                   pattern("CreateWalletRequest", "initial_credits_to_load"))
    valid = ["1", "0.5", "0.000000000001", "999999999999999.999999999999"]
    assert all(credits_to_add.fullmatch(v) and debit.fullmatch(v) for v in valid)
    refused = ["0", "0.0", "-1", "1e3", "0.0000000000001", "1000000000000000", " 1", "1_0", "\u0661", "1\n"]
    assert not [v for v in refused if debit.fullmatch(v)]
    assert credits_to_add.fullmatch("") and not debit.fullmatch(""), "an optional decimal may be empty (not given)"
    assert rate.fullmatch("0") and not rate.fullmatch("-0.5"), "initial credits are non-negative"
    numbers = {o["type"]: o for o in schemas["DebitRequest"]["properties"]["credits"]["anyOf"]}
    assert numbers["number"]["exclusiveMinimum"] == 0 and numbers["integer"]["exclusiveMaximum"] == 10**15
