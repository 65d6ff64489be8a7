"""Operator endpoints (an operator credential, never a tenant key): verify that snapshots equal a fold of their
streams from zero, as a background job — one at a time, off the event loop — polled for progress and its report."""

from typing import Annotated

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import Operator
from api.body import response_doc
from api.responses import json
from api.verifyjobs import VerifyJob, VerifyJobs, VerifyScope
from store.verify import VerifyReport

router = APIRouter(prefix="/v1/admin", tags=["Admin"])


class DriftWire(msgspec.Struct):
    tenant_id: str
    environment_id: str
    customer_id: str
    field: str
    snapshot: str
    log: str


class AccountWire(msgspec.Struct):
    tenant_id: str
    environment_id: str
    customer_id: str


class ProblemWire(msgspec.Struct):
    """An account verify could not compare (quarantined, unreadable, unfoldable), and why."""

    tenant_id: str
    environment_id: str
    customer_id: str
    reason: str


class VerifyResponse(msgspec.Struct):
    accounts: int
    events: int
    drifts: list[DriftWire]
    behind: list[AccountWire]
    ok: bool
    problems: list[ProblemWire] = []


class VerifyJobResponse(msgspec.Struct):
    job_id: str
    state: str
    accounts_total: int
    accounts_done: int
    started_at: str
    finished_at: str | None = None
    report: VerifyResponse | None = None
    error: str | None = None


@router.post("/verify", status_code=202, responses=response_doc(202, VerifyJobResponse))
async def start_verify(
    request: Request, _: Operator, tenant_id: str | None = None, environment_id: str | None = None,
    customer_id: str | None = None, sample: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> Response:
    """Start folding every account (or a tenant's, one customer's, or a random sample) from zero and comparing it
    with its live snapshot, field by field. One job at a time (409 while one runs); poll GET /verify/{job_id}."""
    scope = VerifyScope(tenant_id=tenant_id, environment_id=environment_id, customer_id=customer_id, sample=sample)
    return json(_view(_jobs(request).start(scope)), 202)


@router.get("/verify/{job_id}", responses=response_doc(200, VerifyJobResponse))
async def verify_job(request: Request, _: Operator, job_id: str) -> Response:
    """A verify job's state (running, done, failed, stopped), progress and, once finished, its report."""
    return json(_view(_jobs(request).get(job_id)))


def _jobs(request: Request) -> VerifyJobs:
    jobs: VerifyJobs = request.app.state.verify_jobs
    return jobs


def _view(job: VerifyJob) -> VerifyJobResponse:
    return VerifyJobResponse(job_id=job.id, state=job.state, accounts_total=job.accounts_total,
                             accounts_done=job.accounts_done, started_at=job.started_at,
                             finished_at=job.finished_at, error=job.error,
                             report=None if job.report is None else _report(job.report))


def _report(report: VerifyReport) -> VerifyResponse:
    drifts = [DriftWire(d.ref.tenant_id, d.ref.environment_id, d.ref.customer_id, d.field, d.snapshot, d.log)
              for d in report.drifts]
    behind = [AccountWire(r.tenant_id, r.environment_id, r.customer_id) for r in report.behind]
    problems = [ProblemWire(p.ref.tenant_id, p.ref.environment_id, p.ref.customer_id, p.reason)
                for p in report.problems]
    return VerifyResponse(accounts=report.accounts, events=report.events, drifts=drifts, behind=behind,
                          ok=report.ok, problems=problems)
