"""Usage ingestion, Flexprice-compatible: one event or a bulk of up to 1,000, deduplicated by event id."""

from datetime import timedelta
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.accounts import Accounts
from api.auth import Caller, Principal
from api.body import json_body, request_doc, response_doc
from api.ids import new_id
from api.metrics import APPEND_SECONDS, EVENTS_ACCEPTED
from api.usage_schemas import BulkIngestRequest, EventAccepted, EventsAccepted, IngestEventRequest
from api.wallets import Service, json
from domain.errors import ValidationFailed
from domain.events import UsageRecorded
from domain.identity import AccountRef
from domain.timefmt import parse_rfc3339
from store.eventstore import Dedup

router = APIRouter(prefix="/v1", tags=["Events"])
MAX_BULK = 1000
MAX_TEXT = 255
_event_decoder = msgspec.json.Decoder(IngestEventRequest)


async def max_skew(request: Request) -> timedelta:
    skew: timedelta = request.app.state.max_future_skew
    return skew


Skew = Annotated[timedelta, Depends(max_skew)]


def usage_event(body: IngestEventRequest, caller: Principal, service: Accounts, skew: timedelta
                ) -> tuple[AccountRef, UsageRecorded]:
    """Validate one event and turn it into the fact to append; raises ValidationFailed naming the field."""
    if not body.event_name or len(body.event_name) > MAX_TEXT:
        raise ValidationFailed("event_name is required (at most 255 characters)", {"field": "event_name"})
    customer = body.customer_id or body.external_customer_id
    if not body.external_customer_id or len(customer) > MAX_TEXT:
        raise ValidationFailed("external_customer_id is required (at most 255 characters)",
                               {"field": "external_customer_id"})
    if body.event_id is not None and (not body.event_id or len(body.event_id) > MAX_TEXT):
        raise ValidationFailed("event_id must be 1 to 255 characters", {"field": "event_id"})
    now = service.clock()
    timestamp = now
    if body.timestamp:
        try:
            timestamp = parse_rfc3339(body.timestamp)
        except ValueError as exc:
            raise ValidationFailed("timestamp is not RFC 3339", {"field": "timestamp"}) from exc
        if timestamp > now + skew:
            raise ValidationFailed(f"timestamp is more than {int(skew.total_seconds())} s in the future",
                                   {"field": "timestamp", "timestamp": body.timestamp})
    event = UsageRecorded(
        id=body.event_id or new_id("event"), at=now, event_name=body.event_name,
        external_customer_id=body.external_customer_id, timestamp=timestamp, properties=body.properties,
        source=body.source or "",
    )
    return AccountRef(caller.tenant_id, caller.environment_id, customer), event


@router.post("/events", status_code=202, openapi_extra=request_doc(IngestEventRequest),
             responses=response_doc(202, EventAccepted, "Accepted"))
async def ingest_event(
    caller: Caller, service: Service, skew: Skew,
    body: Annotated[IngestEventRequest, Depends(json_body(IngestEventRequest))],
) -> Response:
    """A 202 means the event is in Redis; a repeated event_id for the customer is accepted and counted once."""
    return await accept_event(body, caller, service, skew)


async def accept_event(body: IngestEventRequest, caller: Principal, service: Accounts, skew: timedelta) -> Response:
    ref, event = usage_event(body, caller, service, skew)
    with APPEND_SECONDS.labels("single").time():
        appended = await service.store.append(ref, [event], Dedup(scope="event", key=event.id))
    EVENTS_ACCEPTED.labels(appended.status).inc()
    return json(EventAccepted(message="Event accepted for processing", event_id=event.id), 202)


@router.post("/events/bulk", status_code=202, openapi_extra=request_doc(BulkIngestRequest),
             responses=response_doc(202, EventsAccepted, "Accepted"))
async def ingest_events_bulk(
    caller: Caller, service: Service, skew: Skew,
    body: Annotated[BulkIngestRequest, Depends(json_body(BulkIngestRequest))],
) -> Response:
    """All valid: every event is appended in one pipeline. Any invalid: a 400 naming each, and none is appended."""
    return await accept_bulk(body, caller, service, skew)


async def accept_bulk(body: BulkIngestRequest, caller: Principal, service: Accounts, skew: timedelta) -> Response:
    if not 1 <= len(body.events) <= MAX_BULK:
        raise ValidationFailed(f"events must hold 1 to {MAX_BULK} events", {"count": len(body.events)})
    items = []
    problems: dict[str, str] = {}
    for index, raw in enumerate(body.events):
        try:
            ref, event = usage_event(_event_decoder.decode(raw), caller, service, skew)
        except (msgspec.ValidationError, msgspec.DecodeError, ValidationFailed) as exc:
            problems[str(index)] = getattr(exc, "message", str(exc))
            continue
        items.append((ref, event, Dedup(scope="event", key=event.id)))
    if problems:
        raise ValidationFailed(f"{len(problems)} of {len(body.events)} events are invalid; none was accepted",
                               {"events": problems})
    with APPEND_SECONDS.labels("bulk").time():
        results = await service.store.append_each(items)
    duplicates = sum(1 for r in results if r.status == "duplicate")
    EVENTS_ACCEPTED.labels("appended").inc(len(results) - duplicates)
    EVENTS_ACCEPTED.labels("duplicate").inc(duplicates)
    return json(EventsAccepted(message="Events accepted for processing", accepted=str(len(results)),
                               duplicates=str(duplicates)), 202)
