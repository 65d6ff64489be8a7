"""The wallet-transaction filters Flexprice's SDK sends (list and search), parsed once and matched exactly.

Each filter is matched on the transaction as the list shows it (api/present.py), so a caller can check a filtered
page against the unfiltered list with the same rule: equality for type, transaction_status, transaction_reason,
reference_type, reference_id, priority and created_by; `expiry_date < expiry_date_before`,
`expiry_date > expiry_date_after` (a transaction without expiry matches neither); `credits_available >
credits_available_gt`, compared as exact decimals; `start_time <= created_at <= end_time`; `status` published
matches every transaction (tally deletes and archives none), deleted and archived none. A filter tally does not
honour (`expand`, `filters`, a sort field other than created_at) is a 400, never ignored. A sort condition's
direction takes precedence over `order`.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from api.bounded import CURSOR_PATTERN, Id, OptionalId, Timestamp
from api.schemas import ExactDecimal, TransactionResponse
from api.translate import decimal_field, exact_decimal, int_field, time_field
from domain.bounds import PAGE_OFFSET_MAX, PRIORITY_MAX, TRANSACTIONS_PAGE_MAX
from domain.errors import ValidationFailed

TransactionType = Literal["credit", "debit"]
TransactionStatus = Literal["pending", "completed", "failed"]
TransactionReason = Literal[
    "INVOICE_PAYMENT", "FREE_CREDIT_GRANT", "SUBSCRIPTION_CREDIT_GRANT", "PURCHASED_CREDIT_INVOICED",
    "PURCHASED_CREDIT_DIRECT", "CREDIT_NOTE", "CREDIT_EXPIRED", "WALLET_TERMINATION", "MANUAL_BALANCE_DEBIT",
    "CREDIT_ADJUSTMENT", "INVOICE_VOID_REFUND",
]
RecordStatus = Literal["published", "deleted", "archived"]
Order = Literal["asc", "desc"]
SORT_FIELDS = ("created_at",)


class SortWire(msgspec.Struct, forbid_unknown_fields=True):
    field: Literal["created_at"] | None = None
    direction: Order | None = None


class FilterConditionWire(msgspec.Struct, forbid_unknown_fields=True):
    """Flexprice's generic filter condition: accepted in shape only to be refused with a 400 naming it."""

    field: str | None = None
    operator: str | None = None
    data_type: str | None = None
    value: dict[str, Any] | None = None


class TransactionSearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /v1/wallets/transactions/search (SDK query_wallet_transaction). `id` is the wallet searched (required:
    tally searches one wallet's ledger); `cursor` is tally's, a previous page's `pagination.next_cursor`. `expand`
    and `filters` are not supported: only their empty forms are accepted."""

    id: Id
    type: TransactionType | None = None
    transaction_status: TransactionStatus | None = None
    transaction_reason: TransactionReason | None = None
    reference_type: OptionalId | None = None
    reference_id: OptionalId | None = None
    expiry_date_before: Timestamp | None = None
    expiry_date_after: Timestamp | None = None
    credits_available_gt: ExactDecimal | UnsetType = UNSET
    priority: Annotated[int, msgspec.Meta(ge=0, le=PRIORITY_MAX)] | None = None
    created_by: OptionalId | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    status: RecordStatus | None = None
    expand: Annotated[str, msgspec.Meta(max_length=0)] | None = None
    filters: Annotated[list[FilterConditionWire], msgspec.Meta(max_length=0)] | None = None
    sort: Annotated[list[SortWire], msgspec.Meta(max_length=1)] | None = None
    order: Order | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=TRANSACTIONS_PAGE_MAX)] | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=PAGE_OFFSET_MAX)] | None = None
    cursor: Annotated[str, msgspec.Meta(pattern=CURSOR_PATTERN)] | None = None


class TransactionQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The filters of one request, parsed (None: not given), and the order asked for."""

    type: str | None = None
    transaction_status: str | None = None
    transaction_reason: str | None = None
    reference_type: str | None = None
    reference_id: str | None = None
    expiry_before: datetime | None = None
    expiry_after: datetime | None = None
    credits_available_gt: Decimal | None = None
    priority: Annotated[int, msgspec.Meta(ge=0, le=PRIORITY_MAX)] | None = None
    created_by: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None
    ascending: bool = False

    @property
    def filtered(self) -> bool:
        return any(getattr(self, name) is not None for name in self.__struct_fields__ if name != "ascending")


def refuse_unsupported(expand: str | None, filters: list[FilterConditionWire] | None) -> None:
    if expand:
        raise ValidationFailed("expand is not supported on wallet transactions", {"expand": expand[:64]})
    if filters:
        raise ValidationFailed("generic filter conditions (`filters`) are not supported; use the named filters",
                               {"filters": len(filters)})


def ascending(order: str | None, sort: list[SortWire] | None = None) -> bool:
    """Whether the list is oldest first: a sort condition's direction, else `order` (newest first by default)."""
    direction = next((s.direction for s in sort or [] if s.direction), None)
    return (direction or order) == "asc"


def parse_query(values: dict[str, Any], is_ascending: bool) -> TransactionQuery:
    """The parsed filters from their wire values (query parameters or search body; empty text is not given)."""
    given = {name: value for name, value in values.items() if value is not None and value != ""}
    gt = given.get("credits_available_gt")
    if isinstance(gt, msgspec.Raw | UnsetType):
        gt = exact_decimal("credits_available_gt", gt)
    return TransactionQuery(
        type=given.get("type"), transaction_status=given.get("transaction_status"),
        transaction_reason=given.get("transaction_reason"), reference_type=given.get("reference_type"),
        reference_id=given.get("reference_id"),
        expiry_before=time_field("expiry_date_before", given.get("expiry_date_before")),
        expiry_after=time_field("expiry_date_after", given.get("expiry_date_after")),
        credits_available_gt=None if gt is None else decimal_field("credits_available_gt", gt),
        priority=int_field("priority", given.get("priority"), PRIORITY_MAX), created_by=given.get("created_by"),
        start=time_field("start_time", given.get("start_time")), end=time_field("end_time", given.get("end_time")),
        status=given.get("status"), ascending=is_ascending,
    )


_EQUAL = ("type", "transaction_status", "transaction_reason", "reference_type", "reference_id", "priority",
          "created_by")


def matches(query: TransactionQuery, item: TransactionResponse) -> bool:
    """Whether the transaction, as the list shows it, passes every filter of `query`."""
    if any((want := getattr(query, name)) is not None and getattr(item, name) != want for name in _EQUAL):
        return False
    if query.status is not None and query.status != item.status:
        return False
    expiry = item.expiry_date
    if query.expiry_before is not None and (expiry is None or not expiry < query.expiry_before):
        return False
    if query.expiry_after is not None and (expiry is None or not expiry > query.expiry_after):
        return False
    if query.credits_available_gt is not None and not Decimal(item.credits_available or "0") > \
            query.credits_available_gt:
        return False
    if query.start is not None and item.created_at < query.start:
        return False
    return query.end is None or item.created_at <= query.end
