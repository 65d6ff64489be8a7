"""Operator endpoints for a tenant: verify that its snapshots equal a fold of its streams from zero."""

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import Caller
from api.body import response_doc
from api.wallets import Service, json
from domain.identity import AccountRef
from store.projection import Projection
from store.verify import verify_accounts

router = APIRouter(prefix="/v1/admin", tags=["Admin"])


class DriftWire(msgspec.Struct):
    customer_id: str
    field: str
    snapshot: str
    log: str


class VerifyResponse(msgspec.Struct):
    accounts: int
    events: int
    drifts: list[DriftWire]
    behind: list[str]
    ok: bool
    problems: dict[str, str] = {}


@router.post("/verify", responses=response_doc(200, VerifyResponse))
async def verify(request: Request, caller: Caller, service: Service, customer_id: str | None = None) -> Response:
    """Fold the tenant's accounts (or one) from zero and compare with the live snapshots field by field."""
    store = service.store
    if customer_id:
        refs = [AccountRef(caller.tenant_id, caller.environment_id, customer_id)]
    else:
        refs = [ref for p in range(store.keys.partitions) for ref in await store.accounts(p)
                if (ref.tenant_id, ref.environment_id) == (caller.tenant_id, caller.environment_id)]
    report = await verify_accounts(store, Projection(request.app.state.redis, store.keys), refs)
    drifts = [DriftWire(d.ref.customer_id, d.field, d.snapshot, d.log) for d in report.drifts]
    return json(VerifyResponse(accounts=report.accounts, events=report.events, drifts=drifts,
                               behind=[r.customer_id for r in report.behind], ok=report.ok,
                               problems={p.ref.customer_id: p.reason for p in report.problems}))
