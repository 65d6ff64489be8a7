"""Verify as a bounded background job: at most one per API process, run in a worker thread on its own event loop
and Redis connection (so folding a long history never stalls requests), account by account with progress; the
last few jobs are kept for polling."""

import asyncio
import logging
import random
import secrets
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from redis.asyncio import Redis

from domain.errors import AlreadyExists, NotFound
from domain.identity import AccountRef
from store.eventstore import EventStore
from store.generation import live_generation
from store.keys import Keys
from store.projection import Projection
from store.verify import VerifyReport, verify_accounts

log = logging.getLogger("tally.api")
KEEP_JOBS = 16


class VerifyScope(msgspec.Struct, frozen=True, kw_only=True):
    """Which accounts: every account, one tenant/environment, one customer of it, or a random sample of those."""

    tenant_id: str | None = None
    environment_id: str | None = None
    customer_id: str | None = None
    sample: int | None = None

    def admits(self, ref: AccountRef) -> bool:
        return ((self.tenant_id is None or ref.tenant_id == self.tenant_id)
                and (self.environment_id is None or ref.environment_id == self.environment_id))


class VerifyJob:
    """One run; the worker thread only increments counters and sets the result (plain attribute writes)."""

    def __init__(self, scope: VerifyScope) -> None:
        self.id = "verify_" + secrets.token_hex(8)
        self.scope = scope
        self.state = "running"
        self.accounts_total = 0
        self.accounts_done = 0
        self.started_at = _now()
        self.finished_at: str | None = None
        self.report: VerifyReport | None = None
        self.error: str | None = None
        self.stopping = False


class VerifyJobs:
    def __init__(self, connect: Callable[[], Redis], keys: Keys, dedup_ttl_seconds: int, ledger_keep: int) -> None:
        self._connect, self._keys, self._dedup_ttl = connect, keys, dedup_ttl_seconds
        self._ledger_keep = ledger_keep
        self._jobs: OrderedDict[str, VerifyJob] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def start(self, scope: VerifyScope) -> VerifyJob:
        running = [job.id for job in self._jobs.values() if job.state == "running"]
        if running:
            raise AlreadyExists("a verify job is already running; poll it, then start another",
                                {"job_id": running[0]})
        job = VerifyJob(scope)
        self._jobs[job.id] = job
        while len(self._jobs) > KEEP_JOBS:
            self._jobs.popitem(last=False)
        self._task = asyncio.create_task(self._run(job))
        return job

    def get(self, job_id: str) -> VerifyJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no verify job {job_id}", {"job_id": job_id})
        return job

    async def close(self) -> None:
        """Ask a running job to stop after its current account, and wait for it."""
        for job in self._jobs.values():
            job.stopping = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, job: VerifyJob) -> None:
        try:
            job.report = await asyncio.to_thread(asyncio.run, self._verify(job))
            job.state = "stopped" if job.stopping else "done"
        except Exception as exc:
            log.exception("verify job %s failed", job.id)
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        job.finished_at = _now()

    async def _verify(self, job: VerifyJob) -> VerifyReport:
        redis = self._connect()
        try:
            generation = await live_generation(redis, self._keys)
            keys = msgspec.structs.replace(self._keys, generation=generation)
            store, projection = EventStore(redis, keys, self._dedup_ttl), Projection(redis, keys, self._ledger_keep)
            refs = await _select(store, job.scope)
            job.accounts_total = len(refs)
            report = VerifyReport()
            for ref in refs:
                if job.stopping:
                    break
                _merge(report, await verify_accounts(store, projection, [ref]))
                job.accounts_done += 1
            return report
        finally:
            await redis.aclose()


async def _select(store: EventStore, scope: VerifyScope) -> list[AccountRef]:
    if scope.customer_id is not None and scope.tenant_id is not None and scope.environment_id is not None:
        return [AccountRef(scope.tenant_id, scope.environment_id, scope.customer_id)]
    refs = [ref for p in range(store.keys.partitions) for ref in await store.accounts(p) if scope.admits(ref)]
    if scope.customer_id is not None:
        refs = [ref for ref in refs if ref.customer_id == scope.customer_id]
    if scope.sample is not None and scope.sample < len(refs):
        refs = random.sample(refs, scope.sample)
    return refs


def _merge(total: VerifyReport, one: VerifyReport) -> None:
    """Add one account's report to the job's: counters add up, lists extend (whatever fields the report has)."""
    for name in total.__struct_fields__:
        value = getattr(one, name)
        if isinstance(value, list):
            getattr(total, name).extend(value)
        elif isinstance(value, int):
            setattr(total, name, getattr(total, name) + value)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
