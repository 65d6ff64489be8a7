"""The hot routes, each declared once: usage ingestion (single and bulk) and the real-time balance.

The fast path (api/fastpath.py) answers them straight from the ASGI scope; `router` holds the FastAPI routes the
same declarations give, for the OpenAPI document (and for what the fast path leaves to FastAPI, such as HEAD).
"""

from starlette.responses import Response

from api.balances import EXPAND_DOC, EXPAND_PATTERN, read_balance
from api.body import response_doc
from api.events import accept_bulk, accept_event, decode_bulk, decode_event
from api.routetable import HotCall, QueryParam, TableRoute, table_router
from api.schemas import WalletBalanceResponse
from api.usage_schemas import BulkIngestRequest, EventAccepted, EventsAccepted, IngestEventRequest


async def _ingest(call: HotCall) -> Response:
    body = decode_event(call.body)
    return await accept_event(body, call.caller, call.state.accounts, call.state.max_future_skew)


async def _bulk(call: HotCall) -> Response:
    body = decode_bulk(call.body)
    return await accept_bulk(body, call.caller, call.state.accounts, call.state.max_future_skew)


async def _balance(call: HotCall) -> Response:
    return await read_balance(call.path["wallet_id"], call.caller, call.state.accounts, call.text("expand"),
                              call.flag("from_cache"))


INGEST = TableRoute(
    "POST", "/v1/events", "ingest_event", _ingest, tag="Events", status=202, body=IngestEventRequest,
    responses=response_doc(202, EventAccepted, "Accepted"),
    doc="A 202 means the event is in Redis; a repeated event_id for the customer is accepted and counted once.",
)
BULK = TableRoute(
    "POST", "/v1/events/bulk", "ingest_events_bulk", _bulk, tag="Events", status=202, body=BulkIngestRequest,
    responses=response_doc(202, EventsAccepted, "Accepted"),
    doc="All valid: every event is appended in one pipeline. Any invalid: a 400 naming each, and none is appended.",
)
BALANCE = TableRoute(
    "GET", "/v1/wallets/{wallet_id}/balance/real-time", "wallet_balance", _balance, tag="Wallets",
    query=(QueryParam("expand", str, None, pattern=EXPAND_PATTERN, description=EXPAND_DOC),
           QueryParam("from_cache", bool, False)),
    responses=response_doc(200, WalletBalanceResponse),
    doc="Exact by default (snapshot + unfolded tail); `from_cache=true` answers from the snapshot alone.",
)
HOT_ROUTES = (INGEST, BULK, BALANCE)
router = table_router(HOT_ROUTES)
