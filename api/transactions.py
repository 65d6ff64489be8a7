"""Wallet transactions under /v1: the list of one wallet (GET) and the search (POST), with Flexprice's filters.

Unfiltered and newest first, the list is read as before (store/ledger_pages.py `read_page`: one HMGET inside the
window Redis keeps). Filtered, or oldest first, it is a scan of the wallet's ledger in that order that examines at
most SCAN_BUDGET entries per request: a page the budget could not fill carries a `next_cursor` to continue from
(`total` is then absent: it is given only where the request examined the whole ledger).
"""

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.accounts import Accounts
from api.auth import Caller, Principal
from api.body import json_body, request_doc, response_doc
from api.bounded import PageCursor, PageOffset, PathId, QueryId, QueryTimestamp, TransactionsLimit, cursor_parts
from api.openapi_rules import DECIMAL_PATTERNS
from api.present import transaction_response
from api.responses import json
from api.schemas import Pagination, TransactionList
from api.service import Service
from api.transaction_query import (
    Order,
    RecordStatus,
    TransactionQuery,
    TransactionReason,
    TransactionSearchRequest,
    TransactionStatus,
    TransactionType,
    ascending,
    matches,
    parse_query,
    refuse_unsupported,
)
from domain.bounds import PRIORITY_MAX
from domain.state import LedgerEntry, Wallet
from store.ledger_pages import LedgerPage, Scan, read_page, scan_page

router = APIRouter(prefix="/v1", tags=["Wallets"])
SCAN_BUDGET = 5000
"""Ledger entries a filtered (or oldest-first) request examines at most."""
DEFAULT_LIMIT = 50
_FILTERS = ("type", "transaction_status", "transaction_reason", "reference_type", "reference_id",
            "expiry_date_before", "expiry_date_after", "credits_available_gt", "priority", "created_by",
            "start_time", "end_time", "status")


@router.get("/wallets/{wallet_id}/transactions", responses=response_doc(200, TransactionList, errors=(400, 404)))
async def list_transactions(
    wallet_id: PathId, caller: Caller, service: Service,
    limit: TransactionsLimit = DEFAULT_LIMIT, offset: PageOffset = 0, cursor: PageCursor = None,
    type: TransactionType | None = None, transaction_status: TransactionStatus | None = None,
    transaction_reason: TransactionReason | None = None, reference_type: QueryId = None,
    reference_id: QueryId = None, expiry_date_before: QueryTimestamp = None, expiry_date_after: QueryTimestamp = None,
    credits_available_gt: Annotated[str | None, Query(max_length=64, pattern=f"^({DECIMAL_PATTERNS['any']})?$",
                                                      description="an exact decimal")] = None,
    priority: Annotated[int | None, Query(ge=0, le=PRIORITY_MAX)] = None, created_by: QueryId = None,
    start_time: QueryTimestamp = None, end_time: QueryTimestamp = None, status: RecordStatus | None = None,
    sort: Annotated[Literal["created_at"] | None, Query(description="the only sort field")] = None,
    order: Order | None = None,
    expand: Annotated[str | None, Query(max_length=0, description="not supported: only empty")] = None,
    id: Annotated[str | None, Query(max_length=255, description="a wallet id (Flexprice's filter): another "
                                                                 "wallet's matches nothing")] = None,
) -> Response:
    """Newest first unless `order=asc`. Every filter is honoured exactly (api/transaction_query.py); `cursor` (a
    previous page's `pagination.next_cursor`) starts where that page ended, `offset` skips matches after it."""
    refuse_unsupported(expand, None)
    values = {"type": type, "transaction_status": transaction_status, "transaction_reason": transaction_reason,
              "reference_type": reference_type, "reference_id": reference_id,
              "expiry_date_before": expiry_date_before, "expiry_date_after": expiry_date_after,
              "credits_available_gt": credits_available_gt, "priority": priority, "created_by": created_by,
              "start_time": start_time, "end_time": end_time, "status": status}
    query = parse_query(values, order == "asc")
    if id and id != wallet_id:  # the transactions of this wallet that belong to another: none
        query = msgspec.structs.replace(query, status="none")
    return await _listed(service, caller, wallet_id, query, limit, offset, cursor)


@router.post("/wallets/transactions/search", openapi_extra=request_doc(TransactionSearchRequest),
             responses=response_doc(200, TransactionList, errors=(400, 404)))
async def search_transactions(
    caller: Caller, service: Service,
    body: Annotated[TransactionSearchRequest, Depends(json_body(TransactionSearchRequest))],
) -> Response:
    """One wallet's transactions (`id`, required) with the same filters as the list; unknown fields are a 400."""
    refuse_unsupported(body.expand, body.filters)
    limit = DEFAULT_LIMIT if body.limit is None else body.limit
    offset = body.offset or 0
    values: dict[str, Any] = {name: getattr(body, name) for name in _FILTERS}
    query = parse_query(values, ascending(body.order, body.sort))
    return await _listed(service, caller, body.id, query, limit, offset, body.cursor)


async def _listed(service: Accounts, caller: Principal, wallet_id: str, query: TransactionQuery, limit: int,
                  offset: int, cursor: str | None) -> Response:
    ref = await service.locate_wallet(wallet_id, caller)
    start, carried = cursor_parts(cursor)
    now = service.clock()
    page: LedgerPage
    if not query.filtered and not query.ascending:
        page = await read_page(service.store, ref, wallet_id, start, offset + carried, limit)
    else:
        def accept(wallet: Wallet, entry: LedgerEntry) -> bool:
            return matches(query, transaction_response(wallet, entry, now))

        scan = Scan(start=start, ascending=query.ascending, skip=offset + carried, limit=limit, budget=SCAN_BUDGET)
        page = await scan_page(service.store, ref, wallet_id, scan, accept)
    items = [transaction_response(page.wallet, entry, now) for entry in page.entries]
    next_cursor = None if page.next_seq is None else f"{page.next_seq}:{page.left}" if page.left else \
        str(page.next_seq)
    total = page.wallet.entries if not query.filtered else page.total
    return json(TransactionList(items=items, pagination=Pagination(total=total, limit=limit, offset=offset,
                                                                   next_cursor=next_cursor)))
