"""Per-customer billing: the period cycle, invoices left unpaid by settlements, payments, and open usage."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from api.accounts import Accounts
from api.auth import Caller, Principal
from api.body import json_body, request_doc, response_doc
from api.bounded import PathId
from api.ids import new_id
from api.responses import json
from api.service import Service
from api.translate import decimal_field, time_field
from api.usage_schemas import (
    BillingRequest,
    BillingResponse,
    InvoiceList,
    InvoiceResponse,
    PaymentRequest,
    PeriodWire,
    UsageLine,
    UsagePeriod,
    UsageSummary,
)
from domain.commands import PayInvoice, SetBillingCycle
from domain.errors import NotFound, ValidationFailed
from domain.identity import AccountRef
from domain.money import canonical, to_wire
from domain.pricing import charge
from domain.state import Account, Invoice
from domain.usage import period_charges

router = APIRouter(prefix="/v1", tags=["Customers"])


async def account_ref(service: Accounts, caller: Principal, customer_id: str) -> AccountRef:
    """The customer's account: by its internal id or by the name its account goes by (the external id)."""
    return await service.customers.account_of(caller.tenant_id, caller.environment_id, customer_id)


def invoice_response(customer_id: str, invoice: Invoice) -> InvoiceResponse:
    return InvoiceResponse(
        id=invoice.id, customer_id=customer_id, currency=invoice.currency, period_start=invoice.period_start,
        period_end=invoice.period_end, amount=to_wire(invoice.amount),
        paid_from_wallet=to_wire(invoice.paid_from_wallet),
        amount_unpaid=to_wire(invoice.unpaid), status="paid" if invoice.unpaid <= 0 else "unpaid",
        late_events=invoice.late_events,
    )


@router.put("/customers/{customer_id}/billing", openapi_extra=request_doc(BillingRequest),
            responses=response_doc(200, BillingResponse))
async def set_billing(
    customer_id: PathId, caller: Caller, service: Service,
    body: Annotated[BillingRequest, Depends(json_body(BillingRequest))],
) -> Response:
    """Usage from now on falls in periods of this cycle; periods already open keep their bounds."""
    anchor = time_field("anchor", body.anchor)
    if anchor is None:
        raise ValidationFailed("anchor is required")
    command = SetBillingCycle(event_id=new_id("evt"), actor=caller.tenant_id, anchor=anchor, unit=body.period.unit,
                              count=body.period.count)
    outcome = await service.execute(await account_ref(service, caller, customer_id), command)
    cycle = outcome.account.cycle
    return json(BillingResponse(customer_id=customer_id, anchor=cycle.anchor,
                                period=PeriodWire(unit=cycle.unit, count=cycle.count)))


@router.get("/customers/{customer_id}/invoices", responses=response_doc(200, InvoiceList))
async def list_invoices(customer_id: PathId, caller: Caller, service: Service) -> Response:
    read = await service.store.read_account(await account_ref(service, caller, customer_id))
    invoices = sorted(read.account.invoices.values(), key=lambda i: (i.period_start, i.currency))
    return json(InvoiceList(items=[invoice_response(customer_id, i) for i in invoices]))


@router.post("/customers/{customer_id}/invoices/{invoice_id}/payments", openapi_extra=request_doc(PaymentRequest),
             responses=response_doc(200, InvoiceResponse))
async def pay_invoice(
    customer_id: PathId, invoice_id: PathId, caller: Caller, service: Service,
    body: Annotated[PaymentRequest, Depends(json_body(PaymentRequest))],
) -> Response:
    """Record a payment against an invoice (the whole unpaid rest when no amount is given)."""
    command = PayInvoice(event_id=new_id("evt"), actor=caller.tenant_id, invoice_id=invoice_id,
                         amount=decimal_field("amount", body.amount, "positive"), reference=body.reference or "")
    outcome = await service.execute(await account_ref(service, caller, customer_id), command)
    invoice = outcome.account.invoices.get(invoice_id)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return json(invoice_response(customer_id, invoice))


def usage_summary(customer_id: str, account: Account) -> UsageSummary:
    periods = []
    for period in sorted(account.periods.values(), key=lambda p: p.start):
        lines = [
            UsageLine(price_id=line.price.id, lookup_key=line.price.lookup_key, event_name=line.price.event_name,
                      currency=line.price.currency, quantity=to_wire(line.quantity),
                      amount=to_wire(canonical(charge(line.price, line.quantity))), events=line.events)
            for line in sorted(period.lines.values(), key=lambda x: x.price.id)
        ]
        periods.append(UsagePeriod(
            start=period.start, end=period.end, events=period.events, late_events=period.late_events,
            unpriced_events=period.unpriced_events, lines=lines,
            totals={c: to_wire(canonical(a)) for c, a in sorted(period_charges(period).items())},
        ))
    return UsageSummary(customer_id=customer_id, usage_events=account.usage_events, periods=periods)


@router.get("/customers/{customer_id}/usage", responses=response_doc(200, UsageSummary))
async def customer_usage(customer_id: PathId, caller: Caller, service: Service) -> Response:
    """Quantities and charges per price for the open (unsettled) periods, read exactly."""
    read = await service.store.read_account(await account_ref(service, caller, customer_id))
    return json(usage_summary(customer_id, read.account))
