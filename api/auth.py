"""API keys bound to a tenant and an environment, read from the x-api-key header; operator keys (no tenant) for
operator routes, read from `Authorization: Bearer KEY` or x-api-key."""

import hmac
from typing import Annotated

import msgspec
from fastapi import Depends, Header, Request

from domain.errors import Forbidden, Unauthenticated, ValidationFailed


class Principal(msgspec.Struct, frozen=True):
    tenant_id: str
    environment_id: str


def parse_api_keys(text: str) -> dict[str, Principal]:
    """`key:tenant:environment` entries, comma-separated."""
    keys: dict[str, Principal] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        parts = entry.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValidationFailed(f"API key entry {entry!r} is not key:tenant:environment")
        keys[parts[0]] = Principal(parts[1], parts[2])
    return keys


def principal_of(api_keys: dict[str, Principal], key: str | None) -> Principal:
    if not key:
        raise Unauthenticated("missing x-api-key header")
    principal = api_keys.get(key)
    if principal is None:
        raise Unauthenticated("unknown API key")
    return principal


async def authenticate(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> Principal:
    return principal_of(request.app.state.api_keys, x_api_key)


Caller = Annotated[Principal, Depends(authenticate)]


def parse_operator_keys(text: str) -> frozenset[str]:
    """Comma-separated operator keys: they act on every tenant's data, so they are kept apart from tenant keys."""
    return frozenset(filter(None, (part.strip() for part in text.split(","))))


def check_operator(operator_keys: frozenset[str], api_keys: dict[str, Principal], key: str | None) -> None:
    if not operator_keys:
        raise Forbidden("operator routes are disabled: no operator key is configured (TALLY_OPERATOR_KEYS)")
    if not key:
        raise Unauthenticated("missing operator credential (Authorization: Bearer KEY, or x-api-key)")
    if any(hmac.compare_digest(key.encode(), known.encode()) for known in operator_keys):
        return
    if key in api_keys:
        raise Forbidden("a tenant API key cannot use operator routes")
    raise Unauthenticated("unknown operator key")


async def authenticate_operator(
    request: Request, authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else x_api_key
    check_operator(request.app.state.operator_keys, request.app.state.api_keys, key)


Operator = Annotated[None, Depends(authenticate_operator)]
