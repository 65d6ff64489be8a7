"""API keys bound to a tenant and an environment, read from the x-api-key header."""

from typing import Annotated

import msgspec
from fastapi import Depends, Header, Request

from domain.errors import Unauthenticated, ValidationFailed


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
