"""Commands racing on one account (api/accounts.py, api/turns.py) on a real Redis: a serial order, business
refusals only, one transaction per idempotency key, and lost races between processes retried, never a 409."""

import asyncio
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from api import accounts as accounts_module
from api.accounts import Accounts, Outcome
from api.errors import tally_error_response
from domain.commands import CreateWallet, DebitWallet, TopUpWallet
from domain.errors import AccountBusy, InvalidOperation
from domain.identity import AccountRef
from store.batches import BatchAppended, append_batch
from store.eventstore import Dedup, EventStore
from store.keys import Keys
from tests.support.harness import running_app

REF = AccountRef("tenant_a", "env_a", "cust_hot")


def _store(redis: Redis) -> EventStore:
    return EventStore(redis, Keys(4), 3600)


async def _wallet(accounts: Accounts, credits: str) -> None:
    await accounts.execute(REF, CreateWallet(
        event_id="evt_w", actor="t", wallet_id="w_hot", customer_id=REF.customer_id, tenant_id=REF.tenant_id,
        environment_id=REF.environment_id, currency="USD", initial_credits=Decimal(credits),
        initial_transaction_id="wtx_init"))


def _debit(n: int, key: str | None = None) -> DebitWallet:
    return DebitWallet(event_id=f"evt_{n}", actor="t", wallet_id="w_hot", transaction_id=f"wtx_{n}",
                       credits=Decimal(1), reason="MANUAL_BALANCE_DEBIT", idempotency_key=key)


def _balance(outcome: Outcome) -> Decimal:
    wallet = outcome.account.wallets["w_hot"]
    return sum((lot.remaining for lot in wallet.lots), Decimal(0))


async def test_more_debits_than_credits_at_once_succeed_up_to_the_balance_and_the_rest_are_refused(
    aredis: Redis,
) -> None:
    accounts = Accounts(_store(aredis))
    await _wallet(accounts, "10")
    results = await asyncio.gather(*(accounts.execute(REF, _debit(n)) for n in range(25)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, InvalidOperation)]
    done = [r for r in results if isinstance(r, Outcome)]
    assert (len(done), len(refused)) == (10, 15), results
    assert sorted(_balance(o) for o in done) == [Decimal(n) for n in range(10)]  # each reply: a state of one order
    assert await aredis.xlen(Keys(4).log(REF)) == 1 + 10  # the wallet, then the 10 debits that fit


async def test_one_idempotency_key_sent_eight_times_at_once_makes_one_transaction(aredis: Redis) -> None:
    accounts = Accounts(_store(aredis))
    await _wallet(accounts, "100")
    dedup = Dedup(scope="debit", key="same", value="fp:wtx_0", wallet_id="w_hot")
    results = await asyncio.gather(*(accounts.execute(REF, _debit(n, "same"), dedup) for n in range(8)))
    statuses = sorted(r.appended.status for r in results if r.appended is not None)
    assert statuses == ["appended"] + ["duplicate"] * 7
    assert await aredis.xlen(Keys(4).log(REF)) == 1 + 1
    assert {_balance(r) for r in results} == {Decimal(99)}


async def test_two_processes_debiting_one_wallet_retry_lost_races_and_lose_no_update(
    aredis: Redis, monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = Accounts(_store(aredis)), Accounts(_store(aredis))  # two API processes' services
    await _wallet(first, "1000")
    statuses: list[str] = []

    async def counted(*args: Any) -> BatchAppended:
        result = await append_batch(*args)
        statuses.append(result.status)
        return result

    monkeypatch.setattr(accounts_module, "append_batch", counted)
    commands = [(first if n % 2 else second).execute(REF, _debit(n)) for n in range(200)]
    results = await asyncio.gather(*commands)
    assert all(r.appended is not None and r.appended.status == "appended" for r in results)
    read = await first.store.read_account(REF)
    assert sum((lot.remaining for lot in read.account.wallets["w_hot"].lots), Decimal(0)) == 800
    assert await aredis.xlen(Keys(4).log(REF)) == 1 + 200
    assert "conflict" in statuses  # the two did race (and the losers were served again)


async def test_a_command_past_its_deadline_is_a_503_with_retry_after_and_writes_nothing(aredis: Redis) -> None:
    accounts = Accounts(_store(aredis), deadline_seconds=0.0)
    try:
        await accounts.execute(REF, _debit(1))
    except AccountBusy as exc:
        response = tally_error_response("/v1/wallets/w_hot/debit", exc)
    else:
        raise AssertionError("no AccountBusy")
    body = msgspec.json.decode(response.body)
    assert (response.status_code, response.headers["retry-after"]) == (503, "1")
    assert (body["code"], body["http_status_code"], set(body)) == (
        "account_busy", 503, {"code", "message", "http_status_code", "details"})
    assert await aredis.xlen(Keys(4).log(REF)) == 0


async def test_the_http_debit_route_answers_a_refusal_with_the_error_shape_under_concurrency(clean_redis: str) -> None:
    async with running_app(clean_redis, projector=False) as client:
        created = await client.post("/v1/wallets", json={"customer_id": "c", "currency": "USD",
                                                         "initial_credits_to_load": "3"})
        wallet_id = created.json()["id"]
        replies = await asyncio.gather(*(client.post(f"/v1/wallets/{wallet_id}/debit", json={"credits": "1"})
                                         for _ in range(6)))
    assert sorted(r.status_code for r in replies) == [200, 200, 200, 400, 400, 400]
    assert all(r.json()["code"] == "invalid_operation" for r in replies if r.status_code == 400)


async def test_a_refusal_is_decided_on_a_fresh_read_not_on_what_this_process_remembers(aredis: Redis) -> None:
    """Another writer's events (another API process, the projector's clock) are not in this process's memory of the
    account: a debit that memory says cannot be paid must be decided again on a fresh read before it is refused."""
    here, elsewhere = Accounts(_store(aredis)), Accounts(_store(aredis))
    await _wallet(here, "1")
    await here.execute(REF, _debit(1))  # this process now remembers an empty wallet
    await elsewhere.execute(REF, TopUpWallet(
        event_id="evt_top", actor="t", wallet_id="w_hot", transaction_id="wtx_top", credits=Decimal(5),
        reason="FREE_CREDIT_GRANT"))
    outcome = await here.execute(REF, _debit(2))  # refused on memory alone, accepted on a fresh read
    assert _balance(outcome) == Decimal(4)
    with pytest.raises(InvalidOperation):  # a refusal still comes when the fresh read agrees
        await here.execute(REF, DebitWallet(event_id="evt_9", actor="t", wallet_id="w_hot", transaction_id="wtx_9",
                                            credits=Decimal(50), reason="MANUAL_BALANCE_DEBIT"))
