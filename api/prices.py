"""The tenant rate card: create immutable, effective-dated price versions and list them."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.auth import Caller
from api.body import json_body, request_doc, response_doc
from api.bounded import QueryTimestamp
from api.ids import new_id
from api.responses import json
from api.service import Service
from api.translate import decimal_field, decimal_or, time_field
from api.usage_schemas import (
    AggregationWire,
    CreatePriceRequest,
    PriceList,
    PriceResponse,
    TierOut,
    TransformQuantity,
)
from domain.errors import ValidationFailed
from domain.money import to_wire
from domain.pricing import PriceVersion, Tier, check_price, in_force
from store.ratecard import add_price, list_prices

router = APIRouter(prefix="/v1", tags=["Prices"])


def _lookup_key(body: CreatePriceRequest) -> str:
    filters = ";".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(body.filters.items()))
    return body.lookup_key or f"{body.event_name}:{body.currency.lower()}:{filters}"


def price_version(body: CreatePriceRequest, now: datetime) -> PriceVersion:
    effective = time_field("effective_from", body.effective_from) or now
    if effective < now:
        raise ValidationFailed("effective_from cannot be in the past: versions never re-price history",
                               {"effective_from": body.effective_from})
    transform = body.transform_quantity
    price = PriceVersion(
        id=new_id("price"), lookup_key=_lookup_key(body), event_name=body.event_name,
        currency=body.currency.lower(), aggregation=body.aggregation.type, field=body.aggregation.field,
        filters={k: tuple(v) for k, v in body.filters.items()}, billing_model=body.billing_model,
        amount=decimal_or("amount", body.amount, Decimal(0)),
        package_size=decimal_or("transform_quantity.divide_by", transform.divide_by, Decimal(0), "positive")
        if transform else Decimal(1),
        round_up=transform is None or transform.round == "up", tier_mode=body.tier_mode,
        tiers=tuple(Tier(up_to=decimal_field("tiers.up_to", t.up_to),
                         unit_amount=decimal_or("tiers.unit_amount", t.unit_amount, Decimal(0)),
                         flat_amount=decimal_or("tiers.flat_amount", t.flat_amount, Decimal(0)))
                    for t in body.tiers),
        effective_from=effective, created_at=now,
    )
    problems = check_price(price)
    if problems:
        raise ValidationFailed("; ".join(problems), {"problems": problems})
    return price


def price_response(price: PriceVersion) -> PriceResponse:
    return PriceResponse(
        id=price.id, lookup_key=price.lookup_key, event_name=price.event_name, currency=price.currency,
        aggregation=AggregationWire(type=price.aggregation, field=price.field), billing_model=price.billing_model,
        amount=to_wire(price.amount), filters={k: list(v) for k, v in price.filters.items()},
        transform_quantity=TransformQuantity(divide_by=to_wire(price.package_size),
                                             round="up" if price.round_up else "down")
        if price.billing_model == "PACKAGE" else None,
        tier_mode=price.tier_mode,
        tiers=[TierOut(up_to=None if t.up_to is None else to_wire(t.up_to), unit_amount=to_wire(t.unit_amount),
                       flat_amount=to_wire(t.flat_amount)) for t in price.tiers],
        effective_from=price.effective_from, created_at=price.created_at,
    )


@router.post("/prices", status_code=201, openapi_extra=request_doc(CreatePriceRequest),
             responses=response_doc(201, PriceResponse, "Created"))
async def create_price(
    request: Request, caller: Caller, service: Service,
    body: Annotated[CreatePriceRequest, Depends(json_body(CreatePriceRequest))],
) -> Response:
    """A new version; with the lookup_key of an existing price it supersedes it from effective_from on."""
    price = price_version(body, service.clock())
    await add_price(request.app.state.redis, service.store.keys, caller.tenant_id, caller.environment_id, price)
    return json(price_response(price), 201)


@router.get("/prices", responses=response_doc(200, PriceList))
async def get_prices(request: Request, caller: Caller, service: Service, at: QueryTimestamp = None) -> Response:
    """Every version, or with `at` only the versions in force at that instant."""
    prices = await list_prices(request.app.state.redis, service.store.keys, caller.tenant_id, caller.environment_id)
    when = time_field("at", at)
    if when is not None:
        names = sorted({p.event_name for p in prices})
        prices = [p for name in names for p in in_force(prices, name, when)]
    return json(PriceList(items=[price_response(p) for p in prices]))
