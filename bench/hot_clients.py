"""Concurrent clients posting to one wallet (or one stream) for a fixed time, and the books a hot wallet must balance.

Used by bench/hotwallet.py and by tests/e2e/test_hot_wallet.py. Client i talks to urls[i % len(urls)] over its own
keep-alive connection, one request in flight; a 503 is retried with the same body (so the same idempotency key).
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

RETRY_PAUSE = 0.01  # after a 503 (Retry-After says 1 s: a bench client does not wait that long, it counts)
TIMEOUT = 30.0


@dataclass
class HotRun:
    """What the clients saw: every status, the receipts of the acknowledged requests, and the wall time."""

    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    receipts: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        return len(self.receipts)

    @property
    def rate(self) -> float:
        return self.acknowledged / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        shown = ", ".join(f"{status}: {count:,}" for status, count in sorted(self.statuses.items()))
        return f"{self.acknowledged:,} acknowledged in {self.seconds:.2f} s ({self.rate:,.0f}/s); statuses {shown}"


Body = Callable[[int, int], dict[str, Any]]
Receipt = Callable[[httpx.Response], str]


def debit_body(client: int, n: int) -> dict[str, Any]:
    return {"credits": "1", "idempotency_key": f"hot-{client}-{n}", "transaction_reason": "MANUAL_BALANCE_DEBIT"}


def transaction_id(response: httpx.Response) -> str:
    receipt: str = response.json()["wallet_transaction"]["id"]
    return receipt


async def post_for(urls: list[str], path: str, headers: dict[str, str], seconds: float, clients: int = 8,
                   body: Body = debit_body, receipt: Receipt = transaction_id, ok: int = 200) -> HotRun:
    """`clients` loops POSTing `body(client, n)` to `path` back to back until `seconds` have passed (requests
    in flight then are finished and counted)."""
    run = HotRun()
    started = time.perf_counter()
    stop = started + seconds

    async def client(index: int) -> None:
        async with httpx.AsyncClient(base_url=urls[index % len(urls)], headers=headers, timeout=TIMEOUT) as http:
            n = 0
            while time.perf_counter() < stop:
                response = await http.post(path, json=body(index, n))
                run.statuses[response.status_code] += 1
                if response.status_code == 503:
                    await asyncio.sleep(RETRY_PAUSE)
                    continue  # the same n: the same idempotency key
                if response.status_code == ok:
                    run.receipts.append(receipt(response))
                n += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    run.seconds = time.perf_counter() - started
    return run


@dataclass
class Books:
    credit_balance: Decimal
    transactions: Counter[str]


async def read_books(url: str, headers: dict[str, str], wallet_id: str, page: int = 1000) -> Books:
    """The wallet's exact credit balance and how often each transaction id appears in its transactions list."""
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT) as http:
        balance = await http.get(f"/v1/wallets/{wallet_id}/balance/real-time")
        balance.raise_for_status()
        seen: Counter[str] = Counter()
        offset = 0
        while True:
            listed = await http.get(f"/v1/wallets/{wallet_id}/transactions", params={"limit": page, "offset": offset})
            listed.raise_for_status()
            items = listed.json()["items"]
            seen.update(item["id"] for item in items)
            if len(items) < page:
                return Books(Decimal(balance.json()["credit_balance"]), seen)
            offset += page


async def create_wallet(url: str, headers: dict[str, str], customer_id: str, credits: int) -> str:
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT) as http:
        response = await http.post("/v1/wallets", json={"customer_id": customer_id, "currency": "USD",
                                                        "initial_credits_to_load": str(credits)})
        response.raise_for_status()
        wallet_id: str = response.json()["id"]
        return wallet_id


def book_problems(run: HotRun, books: Books, initial: int) -> list[str]:
    """Everything wrong with the books after `run` debited 1 credit per acknowledged request (empty when right)."""
    problems = []
    if run.statuses.get(409):
        problems.append(f"{run.statuses[409]} responses were 409")
    expected = Decimal(initial) - run.acknowledged
    if books.credit_balance != expected:
        problems.append(f"credit balance {books.credit_balance}, expected {expected} (initial {initial} minus "
                        f"{run.acknowledged} acknowledged debits)")
    twice = [tx for tx in run.receipts if books.transactions[tx] != 1]
    if twice:
        problems.append(f"{len(twice)} acknowledged debits not listed exactly once, e.g. {twice[:3]}")
    if len(set(run.receipts)) != len(run.receipts):
        problems.append("one transaction id acknowledged to two requests")
    return problems
