"""Wire shapes of wallet search (Flexprice's WalletFilter, as the SDK's query_wallet sends it) and wallet lists."""

from typing import Annotated, Literal

import msgspec

from api.balances import EXPAND_DOC, EXPAND_PATTERN
from api.bounded import Id
from api.schemas import Pagination, WalletResponse
from domain import bounds
from domain.state import WalletStatus

WalletIds = Annotated[list[Id], msgspec.Meta(max_length=bounds.SEARCH_IDS_MAX,
                                             description=f"at most {bounds.SEARCH_IDS_MAX} ids; [] means any")]
WalletsLimit = Annotated[int, msgspec.Meta(ge=1, le=bounds.WALLETS_PAGE_MAX)]
PageStart = Annotated[int, msgspec.Meta(ge=0, le=bounds.PAGE_OFFSET_MAX)]
SortField = Literal["created_at"]  # the one order tally keeps: creation (ms of created_at, then wallet id)
# Python's `$` (msgspec checks with `re`) also matches before a final newline, which `(?!\n)` refuses.
Expand = Annotated[str, msgspec.Meta(pattern=f"{EXPAND_PATTERN}(?!\n)", description=EXPAND_DOC)]
DEFAULT_LIMIT = 50


class WalletSearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Every field of the SDK's WalletFilter; any other field is a 400. Absent or null means any."""

    wallet_ids: WalletIds | None = None
    status: WalletStatus | None = None
    alert_enabled: bool | None = None
    limit: WalletsLimit | None = None
    offset: PageStart | None = None
    sort: SortField | None = None
    order: Literal["asc", "desc"] | None = None
    expand: Expand | None = None


class WalletList(msgspec.Struct):
    items: list[WalletResponse]
    pagination: Pagination
