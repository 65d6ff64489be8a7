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


def authenticate(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> Principal:
    if not x_api_key:
        raise Unauthenticated("missing x-api-key header")
    principal: Principal | None = request.app.state.api_keys.get(x_api_key)
    if principal is None:
        raise Unauthenticated("unknown API key")
    return principal


Caller = Annotated[Principal, Depends(authenticate)]
