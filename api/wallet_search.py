"""Wallet lists and lookups (Flexprice's routes): GET /v1/wallets and POST /v1/wallets/search with every filter of the
SDK's WalletFilter, and GET /v1/customers/wallets (by id or lookup key, real-time balances, x-max-live)."""

from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from pydantic import StringConstraints

from api.accounts import Accounts
from api.auth import Caller, Principal
from api.balances import BREAKDOWN, EXPAND_DOC, EXPAND_PATTERN, expansions
from api.body import json_body, request_doc, response_doc
from api.bounded import PageOffset, QueryId
from api.present import balance_response, wallet_response
from api.responses import json
from api.schemas import Pagination, WalletResponse
from api.service import Service
from api.wallet_schemas import DEFAULT_LIMIT, WalletList, WalletSearchRequest
from domain import bounds
from domain.balance import view_balance
from domain.errors import ValidationFailed
from domain.identity import AccountRef
from domain.state import Account, Wallet, WalletStatus
from store.eventstore import AccountRead
from store.wallet_list import WalletList as Listed
from store.wallet_list import created_ms, read_accounts, read_within

router = APIRouter(prefix="/v1", tags=["Wallets"])
_PLAIN = f"^[^{bounds.CONTROL_CHARACTERS}]*$"
# The query form of wallet_ids: ids as tally mints them (wallet_ and a ULID), in URL-unreserved ASCII, so that
# SEARCH_IDS_MAX of them fit the request line's bound (TALLY_MAX_HEADER_BYTES); the search body takes any id.
LISTED_ID_MAX_LENGTH = 64
ListedId = Annotated[str, StringConstraints(min_length=1, max_length=LISTED_ID_MAX_LENGTH,
                                            pattern="^[A-Za-z0-9_.~-]+$")]
MAX_LIVE_DOC = (f"seconds, 0 to {bounds.MAX_LIVE_SECONDS_MAX}: answer from the snapshot when it is at most this far "
                "behind the customer's log (its oldest unfolded entry appended at most this long ago), else exactly")
SDK_MAX_LIVE_DOC = "x-max-live as flexprice==2.1.20's `minus` argument sends it (a query parameter); both must agree"
ID_DOC = (f"a customer's internal id, or an account's name: at most {bounds.ID_MAX_LENGTH} characters, no control "
          "characters; empty means not given")


class WalletQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What a list or search asks for; empty means any."""

    wallet_ids: tuple[str, ...] = ()
    status: WalletStatus | None = None
    alert_enabled: bool | None = None
    newest_first: bool = True
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    breakdown: bool = False

    @property
    def filtered(self) -> bool:
        return self.status is not None or self.alert_enabled is not None

    def matches(self, wallet: Wallet) -> bool:
        alerting = wallet.alert_settings.alert_enabled if wallet.alert_settings is not None else False
        return ((self.status is None or wallet.status == self.status)
                and (self.alert_enabled is None or alerting == self.alert_enabled))


@router.get("/wallets", responses=response_doc(200, WalletList))
async def list_wallets(
    caller: Caller, service: Service,
    wallet_ids: Annotated[list[ListedId] | None, Query(max_length=bounds.SEARCH_IDS_MAX)] = None,
    status: WalletStatus | None = None, alert_enabled: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=bounds.WALLETS_PAGE_MAX)] = DEFAULT_LIMIT, offset: PageOffset = 0,
    sort: Literal["created_at"] | None = None, order: Literal["asc", "desc"] | None = None,
    expand: Annotated[str | None, Query(pattern=EXPAND_PATTERN, description=EXPAND_DOC)] = None,
) -> Response:
    """The tenant's wallets, newest first unless `order=asc`; the filters of POST /wallets/search as parameters
    (`wallet_ids` repeated)."""
    query = WalletQuery(wallet_ids=tuple(wallet_ids or ()), status=status, alert_enabled=alert_enabled,
                        newest_first=order != "asc", offset=offset, limit=limit,
                        breakdown=BREAKDOWN in expansions(expand))
    return await find_wallets(service, caller, query)


@router.post("/wallets/search", openapi_extra=request_doc(WalletSearchRequest), responses=response_doc(200, WalletList))
async def search_wallets(
    caller: Caller, service: Service,
    body: Annotated[WalletSearchRequest, Depends(json_body(WalletSearchRequest))],
) -> Response:
    """Flexprice's query_wallet: every field of its WalletFilter honoured, any other field a 400."""
    query = WalletQuery(wallet_ids=tuple(body.wallet_ids or ()), status=body.status, alert_enabled=body.alert_enabled,
                        newest_first=body.order != "asc", offset=body.offset or 0, limit=body.limit or DEFAULT_LIMIT,
                        breakdown=BREAKDOWN in expansions(body.expand))
    return await find_wallets(service, caller, query)


async def find_wallets(service: Accounts, caller: Principal, query: WalletQuery) -> Response:
    """Named wallets are read and filtered; otherwise the tenant's list is walked in creation order: a page of it
    when nothing filters, all of it (at most WALLETS_SCAN_MAX wallets, else a 400) when status or alert_enabled do."""
    listed = Listed(service.store.redis, service.store.keys)
    tenant, environment = caller.tenant_id, caller.environment_id
    page_end = query.offset + query.limit
    if query.wallet_ids:
        found = await _load(service, caller, list(dict.fromkeys(query.wallet_ids)))
        matching = sorted((pair for pair in found if query.matches(pair[1])),
                          key=lambda pair: (created_ms(pair[1].created_at), pair[1].id), reverse=query.newest_first)
        total, page = len(matching), matching[query.offset:page_end]
    elif not query.filtered:
        total = await listed.count(tenant, environment)
        page = await _load(service, caller, await listed.page(tenant, environment, query.newest_first,
                                                               query.offset, query.limit))
    else:
        if await listed.count(tenant, environment) > bounds.WALLETS_SCAN_MAX:
            raise ValidationFailed(
                f"a status or alert_enabled filter examines at most {bounds.WALLETS_SCAN_MAX} wallets and this "
                "tenant has more; name them by wallet_ids", {"limit": bounds.WALLETS_SCAN_MAX})
        every = await listed.page(tenant, environment, query.newest_first, 0, bounds.WALLETS_SCAN_MAX)
        matching = [pair for pair in await _load(service, caller, every) if query.matches(pair[1])]
        total, page = len(matching), matching[query.offset:page_end]
    now = service.clock()
    items = [wallet_response(wallet, view_balance(account, wallet, now), query.breakdown) for account, wallet in page]
    return json(WalletList(items=items, pagination=Pagination(total=total, limit=query.limit, offset=query.offset)))


async def _load(service: Accounts, caller: Principal, wallet_ids: list[str]) -> list[tuple[Account, Wallet]]:
    """Each wallet of the caller's tenant, read exactly, in the order given; a missing one is left out."""
    if not wallet_ids:
        return []
    owners = await Listed(service.store.redis, service.store.keys).owners(
        wallet_ids, caller.tenant_id, caller.environment_id)
    reads = await read_accounts(service.store, list(owners.values()))
    loaded = []
    for wallet_id in wallet_ids:
        ref = owners.get(wallet_id)
        wallet = None if ref is None else reads[ref].account.wallets.get(wallet_id)
        if ref is not None and wallet is not None:
            loaded.append((reads[ref].account, wallet))
    return loaded


@router.get("/customers/wallets", responses=response_doc(200, list[WalletResponse]))
async def customer_wallets_lookup(
    caller: Caller, service: Service,
    customer_id: Annotated[str | None, Query(alias="id", max_length=bounds.ID_MAX_LENGTH, pattern=_PLAIN,
                                             description=ID_DOC)] = None,
    lookup_key: QueryId = None,
    include_real_time_balance: bool = False, from_cache: bool = False,
    expand: Annotated[str | None, Query(pattern=EXPAND_PATTERN, description=EXPAND_DOC)] = None,
    max_live: Annotated[int | None, Header(alias="x-max-live", ge=0, le=bounds.MAX_LIVE_SECONDS_MAX,
                                           description=MAX_LIVE_DOC)] = None,
    sdk_max_live: Annotated[int | None, Query(alias="-", ge=0, le=bounds.MAX_LIVE_SECONDS_MAX,
                                              description=SDK_MAX_LIVE_DOC)] = None,
) -> Response:
    """The customer's wallets, oldest first: `id` (a customer's internal id, or an account's name) or `lookup_key`
    (the external id). Read exactly by default; `from_cache=true` from the snapshot alone; `x-max-live: N` from the
    snapshot when it is at most N seconds behind the log, else exactly. `include_real_time_balance=true`: `balance`
    and `credit_balance` are the real-time ones (pending usage and unpaid invoices subtracted: the SDK's
    WalletResponse shows nothing else), beside every field of GET /wallets/{id}/balance/real-time (freshness too)."""
    if bool(customer_id) == bool(lookup_key):
        raise ValidationFailed("name the customer by exactly one of id and lookup_key")
    tenant, environment = caller.tenant_id, caller.environment_id
    ref = (await service.customers.account_of(tenant, environment, customer_id) if customer_id
           else AccountRef(tenant, environment, lookup_key or ""))
    read, cached = await _read(service, ref, from_cache, _max_live(max_live, sdk_max_live))
    breakdown, now = BREAKDOWN in expansions(expand), service.clock()
    items: list[WalletResponse] = []
    for wallet in sorted(read.account.wallets.values(), key=lambda w: (w.created_at, w.id)):
        view = view_balance(read.account, wallet, now)
        if not include_real_time_balance:
            items.append(wallet_response(wallet, view, breakdown))
            continue
        answer = balance_response(wallet, view, breakdown, cached, read.snapshot_position, read.folded_at,
                                  read.account.position)
        items.append(msgspec.structs.replace(answer, balance=answer.real_time_balance,
                                             credit_balance=answer.real_time_credit_balance))
    return json(items)


def _max_live(header: int | None, query: int | None) -> int | None:
    if header is not None and query is not None and header != query:
        raise ValidationFailed("x-max-live and its query form `-` disagree", {"x-max-live": header, "-": query})
    return header if header is not None else query


async def _read(service: Accounts, ref: AccountRef, from_cache: bool, max_live: int | None) -> tuple[AccountRead, bool]:
    """The account and whether it is the snapshot alone (from_cache wins over x-max-live; a quarantined account is
    its snapshot as it stands)."""
    if from_cache:
        read, cached = await service.store.read_account(ref, cached=True), True
    elif max_live is not None:
        read, cached = await read_within(service.store, ref, max_live * 1000)
    else:
        read, cached = await service.store.read_account(ref), False
    return read, cached or read.quarantined is not None
