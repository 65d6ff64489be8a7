"""Every kind of notice a wallet's life causes is on the notices stream once, under its own key, with the wallet
as the event left it: created, updated, a transaction created pending and then updated when paid, terminated."""

from decimal import Decimal

from redis.asyncio import Redis

from domain.events import CreditsGranted
from domain.identity import AccountRef
from store.eventstore import EventStore
from store.keys import Keys
from tests.support.alerts import read_notices
from tests.support.harness import PARTITIONS, running_app, wait_folded

REF = AccountRef("tenant_a", "env_a", "cust_kinds")


async def test_a_wallets_life_is_noticed_once_per_change(clean_redis: str, aredis: Redis) -> None:
    store = EventStore(aredis, Keys(PARTITIONS), 3600)
    async with running_app(clean_redis) as client:
        created = await client.post("/v1/wallets", json={"customer_id": REF.customer_id, "currency": "USD"})
        wallet_id = created.json()["id"]
        assert (await client.put(f"/v1/wallets/{wallet_id}", json={"name": "N"})).status_code == 200
        at = (await store.read_account(REF)).account.wallets[wallet_id].created_at
        await store.append(REF, [CreditsGranted(id="evt_p", at=at, wallet_id=wallet_id, transaction_id="wtx_p",
                                                credits=Decimal(5), reason="PURCHASED_CREDIT_INVOICED", pending=True)])
        assert (await client.post(f"/v1/wallets/{wallet_id}/transactions/wtx_p/pay")).status_code == 200
        assert (await client.post(f"/v1/wallets/{wallet_id}/terminate")).status_code == 200
        await wait_folded(aredis, REF)
    notices = [n for n in await read_notices(aredis, Keys(PARTITIONS)) if n.customer == REF]
    kinds = [n.payload["event_type"] for n in notices]
    assert [k for k in kinds if not k.startswith(("wallet.ongoing_balance.", "wallet.credit_balance."))] == [
        "wallet.created", "wallet.updated", "wallet.transaction.created", "wallet.transaction.updated",
        "wallet.terminated", "wallet.transaction.created"]  # termination debits what is left
    assert len({n.key for n in notices}) == len(notices)
    updated = next(n.payload for n in notices if n.payload["event_type"] == "wallet.transaction.updated")
    assert updated["transaction"]["transaction_status"] == "completed" and updated["transaction"]["id"] == "wtx_p"
    terminated = next(n.payload for n in notices if n.payload["event_type"] == "wallet.terminated")
    assert terminated["wallet"]["wallet_status"] == "closed" and terminated["wallet"]["credit_balance"] == "0"
