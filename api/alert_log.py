"""The alert log (Flexprice's `POST /v1/alerts/search`, SDK `alerts.query_alert_log`): the wallets' balance alert
transitions, from the notices streams (store/alert_log.py), filtered, sorted by when they happened and paged."""

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from api.accounts import Accounts
from api.auth import Caller, Principal
from api.body import json_body, request_doc, response_doc
from api.bounded import Id, OptionalId, Timestamp, UnsupportedList, UnsupportedText
from api.responses import json
from api.service import Service
from api.translate import time_field
from domain import bounds
from domain.errors import ValidationFailed
from domain.notices import BalanceAlert
from domain.settings import AlertState
from domain.timefmt import parse_rfc3339
from projector.webhook_payloads import ALERT_TYPES, settings_payload, wallet_payload
from store.alert_log import LOG_BUDGET, TooMany, alerts_in

router = APIRouter(prefix="/v1", tags=["alerts"])
AlertType = Literal["low_ongoing_balance", "low_credit_balance", "feature_wallet_balance"]


class SortCondition(msgspec.Struct, forbid_unknown_fields=True):
    field: Literal["created_at"] = "created_at"
    direction: Literal["asc", "desc"] = "desc"


class AlertLogSearch(msgspec.Struct, forbid_unknown_fields=True):
    alert_status: AlertState | None = None
    alert_type: AlertType | None = None
    customer_id: OptionalId | None = None
    entity_id: OptionalId | None = None
    entity_type: Literal["wallet", "feature"] | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=bounds.CUSTOMERS_PAGE_MAX)] | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=bounds.PAGE_OFFSET_MAX)] | None = None
    order: Literal["asc", "desc"] | None = None
    sort: Annotated[list[SortCondition], msgspec.Meta(max_length=1)] | None = None
    status: Literal["published"] | None = None
    filters: UnsupportedList | None = None
    expand: UnsupportedText | None = None


class AlertInfo(msgspec.Struct):
    alert_settings: dict[str, Any] | None
    timestamp: str
    value_at_time: float


class AlertLogEntry(msgspec.Struct):
    id: Id
    alert_status: AlertState
    alert_type: str
    alert_info: AlertInfo
    customer_id: str
    entity_id: str
    entity_type: Literal["wallet"]
    tenant_id: str
    environment_id: str
    status: Literal["published"]
    created_at: str
    wallet: dict[str, Any]
    tally: dict[str, Any]


class Pagination(msgspec.Struct):
    total: int
    limit: int
    offset: int


class AlertLogList(msgspec.Struct):
    items: list[AlertLogEntry]
    pagination: Pagination


@router.post("/alerts/search", openapi_extra=request_doc(AlertLogSearch), responses=response_doc(200, AlertLogList))
async def search_alert_log(
    caller: Caller, service: Service, body: Annotated[AlertLogSearch, Depends(json_body(AlertLogSearch))]
) -> Response:
    """Wallet balance alerts within the notices' retention, newest first unless `order` says otherwise; a search
    whose scope holds more than the bound is a 400 asking for a customer_id or entity_id."""
    partitions, customer = await _scope(caller, service, body)
    try:
        logged = await alerts_in(service.store.redis, service.store.keys, partitions)
    except TooMany as exc:
        raise ValidationFailed(f"the alert log in scope holds more than {LOG_BUDGET} notices; name a customer_id "
                               "or entity_id", {"notices": exc.held}) from None
    start, end = time_field("start_time", body.start_time), time_field("end_time", body.end_time)
    wanted = [(key, a) for key, a in logged if (a.tenant_id, a.environment_id) == (caller.tenant_id,
                                                                                    caller.environment_id)
              and _matches(a, body, customer) and (start is None or parse_rfc3339(a.at) >= start)
              and (end is None or parse_rfc3339(a.at) <= end)]
    newest_first = (body.order or (body.sort[0].direction if body.sort else "desc")) == "desc"
    wanted.sort(key=lambda item: (parse_rfc3339(item[1].at), item[1].position, item[0]), reverse=newest_first)
    offset, limit = body.offset or 0, body.limit or 50
    items = [_entry(key, alert) for key, alert in wanted[offset:offset + limit]]
    return json(AlertLogList(items=items, pagination=Pagination(total=len(wanted), limit=limit, offset=offset)))


async def _scope(caller: Principal, service: Accounts, body: AlertLogSearch) -> tuple[list[int], str | None]:
    """The partitions to read and the account the customer_id names (None: any)."""
    keys = service.store.keys
    customer = None
    if body.customer_id:
        ref = await service.customers.account_of(caller.tenant_id, caller.environment_id, body.customer_id)
        customer = ref.customer_id
        return [keys.partition_of(ref)], customer
    if body.entity_id and body.entity_type != "feature":
        owner = await service.store.find_wallet(body.entity_id)
        if owner is None or (owner.tenant_id, owner.environment_id) != (caller.tenant_id, caller.environment_id):
            return [], customer  # no such wallet of the caller's: nothing to read
        return [keys.partition_of(owner)], customer
    return list(range(keys.partitions)), customer


def _matches(alert: BalanceAlert, body: AlertLogSearch, customer: str | None) -> bool:
    return ((body.entity_type in (None, "wallet")) and (customer is None or alert.customer_id == customer)
            and (not body.entity_id or alert.wallet_id == body.entity_id)
            and (body.alert_status is None or alert.new_state == body.alert_status)
            and (body.alert_type is None or ALERT_TYPES.get(alert.metric) == body.alert_type))


def _entry(key: str, alert: BalanceAlert) -> AlertLogEntry:
    settings = settings_payload(alert.wallet.alert_settings) if alert.wallet else None
    return AlertLogEntry(
        id=key, alert_status=alert.new_state, alert_type=ALERT_TYPES.get(alert.metric, alert.metric),
        alert_info=AlertInfo(alert_settings=settings, timestamp=alert.at, value_at_time=float(alert.balance)),
        customer_id=alert.customer_id, entity_id=alert.wallet_id, entity_type="wallet", tenant_id=alert.tenant_id,
        environment_id=alert.environment_id, status="published", created_at=alert.at,
        wallet=wallet_payload(alert),
        tally={"event_type": alert.event_type, "metric": alert.metric, "old_state": alert.old_state,
               "balance": alert.balance, "threshold": alert.threshold, "position": alert.position})
