"""Usage ingestion, Flexprice-compatible: one event or a bulk of up to 1,000, deduplicated by event id."""

import re
from datetime import timedelta

import msgspec
from fastapi.responses import Response

from api.accounts import Accounts
from api.auth import Principal
from api.body import decode_body
from api.bounded import holds_control
from api.ids import new_id
from api.metrics import accepted, append_seconds
from api.responses import json
from api.translate import time_field
from api.usage_schemas import BulkIngestRequest, EventAccepted, EventsAccepted, IngestEventRequest, UncheckedIngestEvent
from domain.errors import ValidationFailed
from domain.events import UsageRecorded
from domain.identity import AccountRef
from store.eventstore import Dedup

MAX_BULK = 1000
_event_decoder = msgspec.json.Decoder(IngestEventRequest)
_unchecked_decoder = msgspec.json.Decoder(UncheckedIngestEvent)
_EVENT_INDEX = re.compile(r"\$\.events\[(\d+)\]")


class _TypedBulk(msgspec.Struct):
    """A bulk decoded in one go: used only to name the event that nests too deeply to be split off."""

    events: list[IngestEventRequest]


_bulk_decoder = msgspec.json.Decoder(BulkIngestRequest)
_typed_bulk_decoder = msgspec.json.Decoder(_TypedBulk)


def decode_event(data: bytes) -> IngestEventRequest:
    return decode_body(_event_decoder, data)


def decode_bulk(data: bytes) -> BulkIngestRequest:
    """Split a bulk into its raw events; one nested too deeply to split is a 400 naming its index."""
    try:
        return decode_body(_bulk_decoder, data)
    except ValidationFailed as exc:
        if isinstance(exc.__cause__, RecursionError):
            raise _too_deep(data) from exc
        raise


def decode_bulk_event(raw: msgspec.Raw) -> IngestEventRequest:
    """One raw event of a bulk, as `_event_decoder` decodes it (the same value, or the same error): decoded without
    the text fields' pattern, those fields then checked at once; what that refuses or finds is decoded again."""
    try:
        event = _unchecked_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return _event_decoder.decode(raw)
    texts = (event.event_name, event.external_customer_id, event.customer_id or "", event.event_id or "",
             event.source or "", *event.properties)
    return _event_decoder.decode(raw) if holds_control("".join(texts)) else event


def _too_deep(data: bytes) -> ValidationFailed:
    try:
        _typed_bulk_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        found = _EVENT_INDEX.search(str(exc))
        if found:
            return ValidationFailed("1 of the events is invalid; none was accepted",
                                    {"events": {found.group(1): str(exc)}})
    return ValidationFailed("body is nested too deeply")


def usage_event(body: IngestEventRequest, caller: Principal, service: Accounts, skew: timedelta
                ) -> tuple[AccountRef, UsageRecorded]:
    """Validate one event and turn it into the fact to append; raises ValidationFailed naming the field.

    Lengths, characters and property bounds were checked when the body was decoded (api/bounded.py)."""
    customer = body.customer_id or body.external_customer_id
    now = service.clock()
    timestamp = time_field("timestamp", body.timestamp) or now
    if timestamp > now + skew:
        raise ValidationFailed(f"timestamp is more than {int(skew.total_seconds())} s in the future",
                               {"field": "timestamp", "timestamp": body.timestamp})
    event = UsageRecorded(
        id=body.event_id or new_id("event"), at=now, event_name=body.event_name,
        external_customer_id=body.external_customer_id, timestamp=timestamp, properties=body.properties,
        source=body.source or "",
    )
    return AccountRef(caller.tenant_id, caller.environment_id, customer), event


async def accept_event(body: IngestEventRequest, caller: Principal, service: Accounts, skew: timedelta) -> Response:
    ref, event = usage_event(body, caller, service, skew)
    ref = await service.event_account(ref, event.external_customer_id)
    with append_seconds("single").time():
        appended = await service.store.append(ref, [event], Dedup(scope="event", key=event.id))
    accepted(appended.status).inc()
    return json(EventAccepted(message="Event accepted for processing", event_id=event.id), 202)


async def accept_bulk(body: BulkIngestRequest, caller: Principal, service: Accounts, skew: timedelta) -> Response:
    if not 1 <= len(body.events) <= MAX_BULK:
        raise ValidationFailed(f"events must hold 1 to {MAX_BULK} events", {"count": len(body.events)})
    items = []
    problems: dict[str, str] = {}
    for index, raw in enumerate(body.events):
        try:
            ref, event = usage_event(decode_bulk_event(raw), caller, service, skew)
            ref = await service.event_account(ref, event.external_customer_id)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, ValidationFailed) as exc:
            problems[str(index)] = getattr(exc, "message", str(exc))
            continue
        items.append((ref, event, Dedup(scope="event", key=event.id)))
    if problems:
        raise ValidationFailed(f"{len(problems)} of {len(body.events)} events are invalid; none was accepted",
                               {"events": problems})
    with append_seconds("bulk").time():
        results = await service.store.append_each(items)
    duplicates = sum(1 for r in results if r.status == "duplicate")
    accepted("appended").inc(len(results) - duplicates)
    accepted("duplicate").inc(duplicates)
    return json(EventsAccepted(message="Events accepted for processing", accepted=str(len(results)),
                               duplicates=str(duplicates)), 202)
