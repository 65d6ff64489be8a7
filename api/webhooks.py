"""Webhook endpoints per tenant, and the state of every delivery (pending, delivered, dead)."""

import base64
import os
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.auth import Caller
from api.body import json_body, request_doc, response_doc
from api.bounded import DeliveriesLimit, Id, PageOffset, PathId
from api.ids import new_id
from api.responses import json
from domain.bounds import WEBHOOK_MAX_ENDPOINTS, WEBHOOK_MAX_EVENT_TYPES
from domain.errors import NotFound, ValidationFailed
from domain.webhook_targets import SECRET_PREFIX, check_secret, error_class, parse_target
from projector.outbound import public_addresses, system_resolve
from store.webhooks import Delivery, Endpoint, PayloadFormat, Webhooks

RESOLVE_TIMEOUT_S = 2.0  # a registration whose host does not resolve in time is refused
router = APIRouter(prefix="/v1/webhooks", tags=["Webhooks"])


class EndpointRequest(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    secret: str | None = None
    event_types: Annotated[list[Id], msgspec.Meta(max_length=WEBHOOK_MAX_EVENT_TYPES)] = []
    payload_format: PayloadFormat = "flexprice"  # projector/webhook_payloads.py


class EndpointResponse(msgspec.Struct):
    id: str
    url: str
    secret: str
    event_types: list[str]
    created_at: str
    payload_format: PayloadFormat


class EndpointList(msgspec.Struct):
    items: list[EndpointResponse]


class DeliveryList(msgspec.Struct):
    items: list[Delivery]


async def webhooks(request: Request) -> Webhooks:
    return Webhooks(request.app.state.redis, request.app.state.accounts.store.keys)


Store = Annotated[Webhooks, Depends(webhooks)]


def _response(endpoint: Endpoint, reveal: bool) -> EndpointResponse:
    secret = endpoint.secret if reveal else endpoint.secret[:10] + "…"
    return EndpointResponse(id=endpoint.id, url=endpoint.url, secret=secret, event_types=list(endpoint.event_types),
                            created_at=endpoint.created_at, payload_format=endpoint.payload_format)


@router.post("/endpoints", status_code=201, openapi_extra=request_doc(EndpointRequest),
             responses=response_doc(201, EndpointResponse, "Created"))
async def add_endpoint(
    caller: Caller, store: Store, request: Request,
    body: Annotated[EndpointRequest, Depends(json_body(EndpointRequest))],
) -> Response:
    """Register a receiver; the signing secret (whsec_…) is shown in full only here.

    The URL is http(s), without credentials, at most 2048 characters, and its host must resolve to public addresses
    only (not loopback, private, link-local, CGNAT, multicast or reserved) unless the deployment allows private ones.
    """
    target = parse_target(body.url)
    secret = body.secret if body.secret is not None else SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()
    check_secret(secret)
    if not request.app.state.webhook_allow_private:
        await public_addresses(target.host, target.port, system_resolve, RESOLVE_TIMEOUT_S)
    if await store.endpoint_count(caller.tenant_id, caller.environment_id) >= WEBHOOK_MAX_ENDPOINTS:
        raise ValidationFailed(f"at most {WEBHOOK_MAX_ENDPOINTS} endpoints per environment")
    endpoint = Endpoint(id=new_id("whe"), url=body.url, secret=secret, event_types=tuple(body.event_types),
                        created_at=datetime.now(UTC).isoformat(), payload_format=body.payload_format)
    await store.add_endpoint(caller.tenant_id, caller.environment_id, endpoint)
    return json(_response(endpoint, reveal=True), 201)


@router.get("/endpoints", responses=response_doc(200, EndpointList))
async def list_endpoints(caller: Caller, store: Store) -> Response:
    endpoints = await store.endpoints(caller.tenant_id, caller.environment_id)
    return json(EndpointList(items=[_response(e, reveal=False) for e in endpoints]))


@router.delete("/endpoints/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: PathId, caller: Caller, store: Store) -> Response:
    if not await store.delete_endpoint(caller.tenant_id, caller.environment_id, endpoint_id):
        raise NotFound(f"endpoint {endpoint_id} not found")
    return Response(status_code=204)


@router.get("/deliveries", responses=response_doc(200, DeliveryList))
async def list_deliveries(
    caller: Caller, store: Store, limit: DeliveriesLimit = 50, offset: PageOffset = 0,
) -> Response:
    """Newest first: status (pending, delivered, dead), attempts, last HTTP status and the class of the last error
    (`timeout`, `connection_failed`, `http_<status>`, `refused_destination`, `endpoint_deleted`)."""
    found = await store.deliveries(caller.tenant_id, caller.environment_id, limit, offset)
    return json(DeliveryList(items=[msgspec.structs.replace(d, last_error=error_class(d.last_error)) for d in found]))
