"""Archive tests' helpers: a small history with usage priced by a rate card, `tally archive` as a process,
and the whole log of every account (archive + Redis) to compare before and after archiving."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from domain.events import AnyEvent
from domain.identity import AccountRef
from store.eventstore import EventStore
from tests.support.catchup import every_account


async def make_history(client: Any, customers: list[str], usage: int = 6, month: str = "2026-03",
                       prices: bool = True, price_month: str | None = None) -> None:
    """Per customer: a wallet with credits (and, first, a price from `month` on), usage events in `month`
    (priced per token), a top-up and a debit; a second call (prices=False) adds to the same wallets."""
    if prices:
        price = await client.post("/v1/prices", json={
            "event_name": "api_call", "currency": "USD", "aggregation": {"type": "SUM", "field": "tokens"},
            "billing_model": "FLAT_FEE", "amount": "0.5", "effective_from": f"{price_month or month}-01T00:00:00Z"})
        assert price.status_code == 201, price.text
    for n, customer in enumerate(customers):
        if prices:
            wallet = await client.post("/v1/wallets", json={"customer_id": customer, "currency": "USD",
                                                            "initial_credits_to_load": "1000"})
            assert wallet.status_code == 200, wallet.text
            wallet_id = wallet.json()["id"]
        else:
            wallet_id = (await client.get(f"/v1/customers/{customer}/wallets")).json()[0]["id"]
        events = [{"event_name": "api_call", "external_customer_id": customer, "event_id": f"{customer}-u{i}",
                   "timestamp": f"{month}-{10 + i:02d}T12:00:00Z", "properties": {"tokens": str(n + i + 1)}}
                  for i in range(usage)]
        if events:
            assert (await client.post("/v1/events/bulk", json={"events": events})).status_code == 202
        top_up = await client.post(f"/v1/wallets/{wallet_id}/top-up", json={
            "credits_to_add": "5", "transaction_reason": "PURCHASED_CREDIT_DIRECT",
            "idempotency_key": f"t-{n}-{prices}"})
        assert top_up.status_code == 200, top_up.text
        debit = await client.post(f"/v1/wallets/{wallet_id}/debit", json={
            "credits": "2", "transaction_reason": "MANUAL_BALANCE_DEBIT", "idempotency_key": f"d-{n}-{prices}"})
        assert debit.status_code == 200, debit.text


def tally(redis_url: str, *args: str, env: dict[str, str] | None = None, partitions: int = 4,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "TALLY_REDIS_URL": redis_url, "TALLY_PARTITIONS": str(partitions), **(env or {})}
    return subprocess.run([sys.executable, "-c", "from cli.main import run; run()", *args], env=environ,
                          capture_output=True, text=True, timeout=timeout)


def archive_env(directory: Path | str, after: str = "0s", **extra: str) -> dict[str, str]:
    return {"TALLY_ARCHIVE_URL": str(directory), "TALLY_ARCHIVE_AFTER": after, **extra}


async def whole_logs(store: EventStore) -> dict[AccountRef, list[tuple[str, AnyEvent]]]:
    return {ref: await store.read_log(ref) for ref in await every_account(store)}


async def stream_lengths(store: EventStore) -> int:
    return sum([int(await store.redis.xlen(store.keys.log(ref))) for ref in await every_account(store)])
