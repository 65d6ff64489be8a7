"""Ledger retention on a real Redis: each wallet keeps its newest TALLY_LEDGER_KEEP entries in Redis; the list stays
exact past them (folded from the log, archived or not), an idempotent retry of an entry that left finds it, a pending
entry below the window is paid and listed, and verify, replay --dry-run and a rebuild agree with the live store."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from domain.events import CreditsGranted
from domain.identity import AccountRef
from domain.ledger import ledgers
from domain.state import EMPTY_ACCOUNT
from store.entries import fold_log
from store.eventstore import EventStore
from store.generation import live_generation
from store.keys import Keys
from store.ledger import entry_field
from store.projection import Projection
from store.verify import verify_all
from tests.integration.test_ledger_store import every_page
from tests.support.archive import archive_env, stream_lengths, tally
from tests.support.harness import PARTITIONS, make_settings, running_app, wait_folded

KEEP = 4
REF = AccountRef("tenant_a", "env_a", "cust_retained")
ENV = {"TALLY_LEDGER_KEEP": str(KEEP)}


async def fill(client: Any, store: EventStore, aredis: Redis) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A wallet with 3 * KEEP entries: its initial grant, a pending top-up, an idempotent debit, then more
    debits and top-ups. Returns the wallet id, the idempotent debit's body and its first reply."""
    reply = await client.post("/v1/wallets", json={"customer_id": REF.customer_id, "currency": "USD",
                                                   "initial_credits_to_load": "1000"})
    wallet_id: str = reply.json()["id"]
    at = (await store.read_account(REF)).account.wallets[wallet_id].created_at
    await store.append(REF, [CreditsGranted(id="evt_pending", at=at, wallet_id=wallet_id, transaction_id="wtx_pending",
                                            credits=Decimal(50), reason="PURCHASED_CREDIT_INVOICED", pending=True)])
    body = {"credits": "3", "idempotency_key": "debit-early"}
    first = await client.post(f"/v1/wallets/{wallet_id}/debit", json=body)
    assert first.status_code == 200, first.text
    for n in range(3 * KEEP - 3):
        if n % 3 == 0:
            path, json = "top-up", {"credits_to_add": str(n + 1), "transaction_reason": "PURCHASED_CREDIT_DIRECT"}
        else:
            path, json = "debit", {"credits": str(n + 1)}
        assert (await client.post(f"/v1/wallets/{wallet_id}/{path}", json=json)).status_code == 200
    await wait_folded(aredis, REF)
    return wallet_id, body, first.json()


async def folded_from_zero(store: EventStore, wallet_id: str) -> list[tuple[str, str, bool]]:
    """The wallet's ledger per the fold of the whole log, newest first: (id, credits, pending)."""
    fold = fold_log(EMPTY_ACCOUNT, await store.read_raw_log(REF), store.rate_cards)
    entries = ledgers(fold.ledger)[wallet_id]
    return [(e.id, str(e.credits), e.pending) for e in reversed(entries)]


def listed(items: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    return [(i["id"], i["credit_amount"], i["transaction_status"] == "pending") for i in items]


async def stored_hashes(aredis: Redis, keys: Keys) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    live = msgspec.structs.replace(keys, generation=await live_generation(aredis, keys))
    return await aredis.hgetall(live.ledger(REF)), await aredis.hgetall(live.ledger_ids(REF))  # type: ignore[misc]


@pytest.mark.parametrize("archived", [False, True])
async def test_entries_past_the_kept_window_are_listed_exactly_from_the_log(
    clean_redis: str, aredis: Redis, tmp_path: Path, archived: bool
) -> None:
    keys = Keys(PARTITIONS)
    store = EventStore(aredis, keys, 3600)
    settings = make_settings(ledger_keep=KEEP)
    async with running_app(clean_redis, settings=settings) as client:
        wallet_id, body, first = await fill(client, store, aredis)
        entries, ids = await stored_hashes(aredis, keys)
        assert len(entries) == len(ids) == KEEP  # the pending top-up (seq 1) is below the window: not stored
        if archived:
            done = tally(clean_redis, "archive", env=archive_env(tmp_path))
            assert done.returncode == 0, done.stdout + done.stderr
            assert await stream_lengths(store) == 0
        expected = await folded_from_zero(store, wallet_id)
        assert len(expected) == 3 * KEEP and expected[-2] == ("wtx_pending", "50", True)
        assert listed(await every_page(client, wallet_id, 3)) == expected
        for offset in range(len(expected) + 1):
            page = (await client.get(f"/v1/wallets/{wallet_id}/transactions",
                                     params={"limit": 3, "offset": offset})).json()
            assert listed(page["items"]) == expected[offset:offset + 3], offset
            assert page["pagination"]["total"] == len(expected)

        retry = await client.post(f"/v1/wallets/{wallet_id}/debit", json=body)
        assert retry.status_code == 200, retry.text
        assert retry.json()["wallet_transaction"] == first["wallet_transaction"]
        paid = await client.post(f"/v1/wallets/{wallet_id}/transactions/wtx_pending/pay")
        assert paid.status_code == 200, paid.text
        assert paid.json()["wallet_transaction"]["transaction_status"] == "completed"
        await wait_folded(aredis, REF)
        after_pay = await folded_from_zero(store, wallet_id)
        assert after_pay[-2] == ("wtx_pending", "50", False)
        assert listed(await every_page(client, wallet_id, 5)) == after_pay

    entries, ids = await stored_hashes(aredis, keys)
    assert len(entries) == len(ids) == KEEP and entry_field(wallet_id, 1).encode() not in entries
    assert (await verify_all(store, Projection(aredis, keys, KEEP))).ok
    assert not (await verify_all(store, Projection(aredis, keys, 3 * KEEP))).ok  # a wider window: entries missing
    checked = tally(clean_redis, "verify", env=ENV)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    compared = tally(clean_redis, "replay", "--dry-run", env=ENV)
    assert compared.returncode == 0 and "drifts=0" in compared.stdout, compared.stdout + compared.stderr
    rebuilt = tally(clean_redis, "replay", env=ENV)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert await stored_hashes(aredis, keys) == (entries, ids)  # the rebuild writes the same bytes
