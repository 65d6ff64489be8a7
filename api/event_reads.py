"""Usage events read back (Flexprice's GET /v1/events/{id} and POST /v1/events/query), from Redis and the archive.

tally keeps no index from an event id to its customer (the dedup markers hold digests per customer, store/dedup.py),
so both reads are scoped to one customer's log: `external_customer_id` names it (the account ingestion filed the
event under: its customer_id when it had one, else its external_customer_id). GET takes it as a query parameter or,
for SDK clients whose get_event sends only the id, as the `x-external-customer-id` header (without either it is a
404 saying so: no event is found without its customer). Each request examines at
most a bounded number of log entries (store/log_pages.py): the query pages on with `iter_last_key`, a lookup by id
that reaches its bound without finding the event answers 404 saying so. A tenant reads only its own accounts.
"""

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response
from starlette.convertors import StringConvertor, register_url_convertor

from api.auth import Caller, Principal
from api.body import json_body, request_doc, response_doc
from api.bounded import Filters, Id, OptionalId, PathId, QueryId, Timestamp
from api.responses import json
from api.service import Service
from api.translate import time_field
from domain.errors import NotFound
from domain.events import UsageRecorded
from domain.identity import AccountRef
from store.log_pages import log_page, readable_event
from store.positions import is_after

router = APIRouter(prefix="/v1", tags=["Events"])


class EventIdConvertor(StringConvertor):
    """An event id in a path, but not `bulk` or `query`: those are POST routes beside it, and a GET on them is a 405
    (with their own Allow header), not a lookup of an event so named."""

    regex = "(?!(?:bulk|query)$)[^/]+"


register_url_convertor("event_id", EventIdConvertor())
LOOKUP_BUDGET = 10_000
"""Log entries a lookup by id examines at most (newest first)."""
QUERY_BUDGET = 5_000
"""Log entries one query page examines at most."""
PAGE_MAX, PAGE_DEFAULT = 1000, 50
_POSITION = Annotated[str, msgspec.Meta(pattern="^[0-9]{1,20}-[0-9]{1,20}$", max_length=41)]


class EventWire(msgspec.Struct, omit_defaults=True):
    id: str
    event_name: str
    external_customer_id: str
    customer_id: str
    environment_id: str
    timestamp: str
    source: str = ""
    properties: dict[str, str | int | float] = {}


class EventByIdResponse(msgspec.Struct):
    """`status`: processed once the projector folded it into the snapshot, processing before."""

    event: EventWire
    status: Literal["processed", "processing"]


class EventsQuery(msgspec.Struct, forbid_unknown_fields=True):
    """POST /v1/events/query (SDK list_raw_events). Events are listed in the order they were recorded (`order`),
    so `sort` (Flexprice's timestamp or event_name), `iter_first_key` and an `offset` other than 0 are refused (400);
    `iter_last_key` is a previous page's, `start_time`/`end_time` bound the event's timestamp (inclusive; absent:
    unbounded)."""

    external_customer_id: Id
    event_name: OptionalId | None = None
    event_id: OptionalId | None = None
    source: OptionalId | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    property_filters: Filters | None = None
    order: Literal["asc", "desc"] | None = None
    sort: Annotated[str, msgspec.Meta(max_length=0)] | None = None
    page_size: Annotated[int, msgspec.Meta(ge=1, le=PAGE_MAX)] | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=0)] | None = None
    iter_first_key: Annotated[str, msgspec.Meta(max_length=0)] | None = None
    iter_last_key: _POSITION | None = None


class EventsPage(msgspec.Struct, omit_defaults=True):
    events: list[EventWire]
    has_more: bool
    offset: int = 0
    iter_last_key: str | None = None


def _wire(ref: AccountRef, event: UsageRecorded) -> EventWire:
    return EventWire(id=event.id, event_name=event.event_name, external_customer_id=event.external_customer_id,
                     customer_id=ref.customer_id, environment_id=ref.environment_id,
                     timestamp=event.timestamp.isoformat().replace("+00:00", "Z"), source=event.source,
                     properties=dict(event.properties))


def _account(caller: Principal, customer: str | None, event_id: str) -> AccountRef:
    if not customer:
        raise NotFound(f"event {event_id} not found: no customer named (external_customer_id or the "
                       "x-external-customer-id header); tally finds an event within one customer's log",
                       {"event_id": event_id, "scope": "missing"})
    return AccountRef(caller.tenant_id, caller.environment_id, customer)


@router.get("/events/{event_id:event_id}", responses=response_doc(200, EventByIdResponse, errors=(400, 404)))
async def get_event(
    event_id: PathId, caller: Caller, service: Service, external_customer_id: QueryId = None,
    x_external_customer_id: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """The usage event `event_id` of the customer, searched newest first among its newest LOOKUP_BUDGET events."""
    ref = _account(caller, external_customer_id or x_external_customer_id, event_id)
    page = await log_page(service.store, ref, False, None, LOOKUP_BUDGET)
    for entry in page.entries:
        event = readable_event(entry, service.store.rate_cards)
        if isinstance(event, UsageRecorded) and event.id == event_id:
            read = await service.store.read_account(ref, cached=True)
            folded = not is_after(entry.position, read.snapshot_position)
            return json(EventByIdResponse(event=_wire(ref, event), status="processed" if folded else "processing"))
    if page.next is not None:
        raise NotFound(f"event {event_id} is not among the customer's newest {LOOKUP_BUDGET} log entries; older "
                       "events are read with POST /v1/events/query", {"searched": LOOKUP_BUDGET, "complete": False})
    raise NotFound(f"event {event_id} not found", {"event_id": event_id})


@router.post("/events/query", openapi_extra=request_doc(EventsQuery), responses=response_doc(200, EventsPage,
                                                                                             errors=(400,)))
async def query_events(
    caller: Caller, service: Service, body: Annotated[EventsQuery, Depends(json_body(EventsQuery))],
) -> Response:
    """Matching usage events, newest first unless `order` is asc, `page_size` at most (1 to 1000, default 50);
    a page examines at most QUERY_BUDGET log entries and says where to go on (`iter_last_key`, `has_more`)."""
    ref = AccountRef(caller.tenant_id, caller.environment_id, body.external_customer_id)
    size = PAGE_DEFAULT if body.page_size is None else body.page_size
    start, end = time_field("start_time", body.start_time), time_field("end_time", body.end_time)
    ascending = body.order == "asc"
    page = await log_page(service.store, ref, ascending, body.iter_last_key, QUERY_BUDGET)
    found: list[EventWire] = []
    last = None
    for entry in page.entries:
        last = entry.position
        event = readable_event(entry, service.store.rate_cards)
        if isinstance(event, UsageRecorded) and _matches(body, event, start, end):
            found.append(_wire(ref, event))
            if len(found) == size:
                break
    more = page.next is not None or (len(found) == size and last != page.entries[-1].position)
    return json(EventsPage(events=found, has_more=more, iter_last_key=last if more else None))


def _matches(body: EventsQuery, event: UsageRecorded, start: datetime | None, end: datetime | None) -> bool:
    if (body.event_name and event.event_name != body.event_name) or (body.event_id and event.id != body.event_id):
        return False
    if body.source and event.source != body.source:
        return False
    if (start is not None and event.timestamp < start) or (end is not None and event.timestamp > end):
        return False
    return all(str(event.properties.get(key)) in values and key in event.properties
               for key, values in (body.property_filters or {}).items())
