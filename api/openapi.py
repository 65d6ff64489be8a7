"""The OpenAPI document: FastAPI's paths, msgspec's schemas, the API key scheme, and the error statuses each kind
of route can answer, every one documented with the ErrorResponse schema."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.body import error_doc, schema_components
from api.openapi_rules import CROSS_FIELD_RULES, document_fields, document_parameters

PUBLIC_PATHS = {"/healthz", "/readyz"}  # answer without an API key
TRANSPORT_STATUSES = {408, 431}  # cli/serve.py answers them for any request, before a route is known
COMMAND_PATHS = ("/v1/wallets", "/v1/customers/")  # their writes are commands on an account (api/accounts.py)
OPERATOR_PATHS = ("/v1/admin",)
FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")  # FastAPI's 422 shapes: tally answers 400 instead

def error_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """What any keyed operation can answer: 401 (key), 500, 503 (store, or too many requests at once), 408 and 431
    (headers too slow or too large, cli/serve.py); 400 when it takes input; 404 when a path names a resource (or a
    path parameter holding `/` leaves every route); 413 when it reads a body (and 408 while it does);
    409 when it executes a command on an account (idempotency key reused, id taken, account quarantined);
    403 on operator routes (a tenant key there)."""
    statuses = {401, 408, 431, 500, 503}
    if method != "get" and path.startswith(COMMAND_PATHS):
        statuses.add(409)
    if path.startswith(OPERATOR_PATHS):
        statuses.add(403)
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        statuses.add(400)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if "requestBody" in operation:
        statuses.add(413)
    return statuses


def merge(target: dict[str, Any], rules: dict[str, Any]) -> None:
    """Merge `rules` into a JSON schema in place: objects key by key, anything else replaced."""
    for key, value in rules.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value


def _document_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    responses.pop("422", None)
    document_parameters(operation)
    if path in PUBLIC_PATHS:
        operation["security"] = []
    statuses = TRANSPORT_STATUSES if path in PUBLIC_PATHS else error_statuses(path, method, operation)
    for status in sorted(statuses):
        responses.setdefault(str(status), error_doc(status))


def openapi_document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_ONLY:
        schemas.pop(name, None)
    schemas.update(schema_components())
    document_fields(schemas)
    for name, rules in CROSS_FIELD_RULES.items():
        merge(schemas[name], rules)
    document["components"]["securitySchemes"] = {
        "ApiKeyAuth": {"type": "apiKey", "name": "x-api-key", "in": "header"}
    }
    document["security"] = [{"ApiKeyAuth": []}]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            _document_operation(path, method, operation)
    return document
