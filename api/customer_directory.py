"""Customers (Flexprice's routes): create, read by id or external id, search, update, delete. The external id names
the customer's account, so a wallet created for the internal id and usage sent for the external id meet."""

from datetime import datetime
from typing import Annotated, NoReturn

import msgspec
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.accounts import Accounts
from api.auth import Caller, Principal
from api.body import json_body, request_doc, response_doc
from api.bounded import PathId
from api.customer_schemas import (
    CreateCustomerRequest,
    CustomerDetails,
    CustomerList,
    CustomerResponse,
    CustomerSearchRequest,
    Pagination,
    UpdateCustomerRequest,
)
from api.ids import new_id
from api.responses import json
from api.service import Service
from api.translate import time_field
from domain.customers import Customer, may_be_customer_id, micros
from domain.errors import InvalidOperation, NotFound, ValidationFailed
from domain.identity import AccountRef
from store.customers import CustomerQuery, Stored

router = APIRouter(prefix="/v1", tags=["customers"])
DEFAULT_LIMIT = 50
_DETAILS = tuple(name for name in CustomerDetails.__struct_fields__ if name != "integration_entity_mapping")


def customer_response(customer: Customer, caller: Principal) -> CustomerResponse:
    return CustomerResponse(
        id=customer.id, external_id=customer.external_id, name=customer.name, email=customer.email,
        address_line1=customer.address_line1, address_line2=customer.address_line2,
        address_city=customer.address_city, address_state=customer.address_state,
        address_postal_code=customer.address_postal_code, address_country=customer.address_country,
        metadata=customer.metadata, tenant_id=caller.tenant_id, environment_id=caller.environment_id,
        status="published", created_at=customer.created_at, updated_at=customer.updated_at,
        created_by=customer.created_by, updated_by=customer.updated_by)


def _details(body: CustomerDetails) -> dict[str, object]:
    return {name: getattr(body, name) for name in _DETAILS if getattr(body, name) is not None}


@router.post("/customers", status_code=201, openapi_extra=request_doc(CreateCustomerRequest),
             responses=response_doc(201, CustomerResponse, errors=(409,)))
async def create_customer(
    caller: Caller, service: Service, body: Annotated[CreateCustomerRequest, Depends(json_body(CreateCustomerRequest))]
) -> Response:
    """409 when the external id already names a customer of the tenant."""
    if may_be_customer_id(body.external_id):
        raise ValidationFailed("external_id may not have the shape of a tally customer id (cust_ and a ULID)",
                               {"field": "external_id"})
    now = service.clock()
    customer = msgspec.structs.replace(
        Customer(id=new_id("cust"), external_id=body.external_id, created_at=now, updated_at=now,
                 created_by=caller.tenant_id, updated_by=caller.tenant_id), **_details(body))
    await service.customers.create(customer, caller.tenant_id, caller.environment_id)
    return json(customer_response(customer, caller), 201)


@router.get("/customers/external/{external_id}", responses=response_doc(200, CustomerResponse))
async def get_customer_by_external_id(external_id: PathId, caller: Caller, service: Service) -> Response:
    found = await service.customers.by_external_id(caller.tenant_id, caller.environment_id, external_id)
    if found is None:
        raise_not_found(external_id=external_id)
    return json(customer_response(found.customer, caller))


@router.post("/customers/search", openapi_extra=request_doc(CustomerSearchRequest),
             responses=response_doc(200, CustomerList))
async def search_customers(
    caller: Caller, service: Service, body: Annotated[CustomerSearchRequest, Depends(json_body(CustomerSearchRequest))]
) -> Response:
    query = customer_query(body)
    found = await service.customers.search(caller.tenant_id, caller.environment_id, query)
    if body.status not in (None, "published"):  # tally deletes customers outright: none is archived or deleted
        found = msgspec.structs.replace(found, customers=[], total=0)
    items = [customer_response(c, caller) for c in found.customers]
    return json(CustomerList(items=items, pagination=Pagination(total=found.total, limit=query.limit,
                                                               offset=query.offset)))


@router.put("/customers", openapi_extra=request_doc(UpdateCustomerRequest),
            responses=response_doc(200, CustomerResponse))
async def update_customer(
    caller: Caller, service: Service,
    body: Annotated[UpdateCustomerRequest, Depends(json_body(UpdateCustomerRequest))],
    customer_id: Annotated[str | None, Query(alias="id", min_length=1, max_length=255)] = None,
    external_customer_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
) -> Response:
    """The customer named by `id` or `external_customer_id`. Its external id names its account and cannot change."""
    stored = await _named(caller, service, customer_id, external_customer_id)
    if body.external_id and body.external_id != stored.customer.external_id:
        raise InvalidOperation("external_id cannot change: it names the customer's account",
                               {"external_id": stored.customer.external_id})
    details, now = _details(body), service.clock()

    def change(customer: Customer) -> Customer:
        return msgspec.structs.replace(customer, updated_at=now, updated_by=caller.tenant_id, **details)

    updated = await service.customers.replace(stored, change, caller.tenant_id, caller.environment_id)
    return json(customer_response(updated, caller))


@router.get("/customers/{customer_id}", responses=response_doc(200, CustomerResponse))
async def get_customer(customer_id: PathId, caller: Caller, service: Service) -> Response:
    stored = await service.customers.get(caller.tenant_id, caller.environment_id, customer_id)
    return json(customer_response(stored.customer, caller))


@router.delete("/customers/{customer_id}", status_code=204, responses=response_doc(204, None))
async def delete_customer(customer_id: PathId, caller: Caller, service: Service) -> Response:
    """Refused (400) while the customer's account holds wallets, open usage or an unpaid invoice."""
    stored = await service.customers.get(caller.tenant_id, caller.environment_id, customer_id)
    ref = AccountRef(caller.tenant_id, caller.environment_id, stored.customer.external_id)
    account = (await service.store.read_account(ref)).account
    unpaid = [i.id for i in account.invoices.values() if i.unpaid > 0]
    if account.wallets or account.periods or unpaid:
        raise InvalidOperation("the customer has wallets, open usage or unpaid invoices; it is kept",
                               {"wallets": len(account.wallets), "open_periods": len(account.periods),
                                "unpaid_invoices": len(unpaid)})
    await service.customers.delete(stored, caller.tenant_id, caller.environment_id)
    return Response(status_code=204)


async def _named(caller: Principal, service: Accounts, customer_id: str | None, external_id: str | None) -> Stored:
    if bool(customer_id) == bool(external_id):
        raise ValidationFailed("name the customer by exactly one of id and external_customer_id")
    if customer_id:
        return await service.customers.get(caller.tenant_id, caller.environment_id, customer_id)
    found = await service.customers.by_external_id(caller.tenant_id, caller.environment_id, external_id or "")
    if found is None:
        raise_not_found(external_customer_id=external_id or "")
    return found


def raise_not_found(**name: str) -> NoReturn:
    raise NotFound(f"customer {next(iter(name.values()))} not found", dict(name))


def customer_query(body: CustomerSearchRequest) -> CustomerQuery:
    start, end = time_field("start_time", body.start_time), time_field("end_time", body.end_time)
    sort = body.sort[0] if body.sort else None  # created_at is the one field: the first condition decides
    direction = body.order or (sort.direction if sort else "desc")
    external = [*(body.external_ids or ()), *([body.external_id] if body.external_id else [])]
    return CustomerQuery(ids=tuple(body.customer_ids or ()), external_ids=tuple(external), email=body.email or "",
                         metadata=body.metadata or {}, created_from_us=_micros(start), created_to_us=_micros(end),
                         newest_first=direction == "desc", offset=body.offset or 0,
                         limit=body.limit or DEFAULT_LIMIT)


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else micros(moment)
