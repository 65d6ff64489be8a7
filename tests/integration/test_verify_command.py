"""`tally verify` on a real Redis: exit 0 when snapshots equal the log, 1 with the drift printed when one does not."""

import os
import subprocess
import sys

import msgspec
from redis.asyncio import Redis

from domain.codec import decode_account, encode_account
from domain.identity import AccountRef
from store.keys import Keys
from tests.support.harness import PARTITIONS, running_app, wait_folded

REF = AccountRef("tenant_a", "env_a", "cust_v")


def tally(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TALLY_REDIS_URL": redis_url, "TALLY_PARTITIONS": str(PARTITIONS)}
    return subprocess.run([sys.executable, "-c", "from cli.main import run; run()", *args], env=env,
                          capture_output=True, text=True, timeout=60)


async def test_verify_passes_on_a_faithful_projection_and_fails_on_a_tampered_snapshot(
    clean_redis: str, aredis: Redis
) -> None:
    async with running_app(clean_redis) as client:
        created = await client.post("/v1/wallets", json={"customer_id": "cust_v", "currency": "USD",
                                                         "initial_credits_to_load": "10"})
        assert created.status_code == 200
        await wait_folded(aredis, REF)
    clean = tally(clean_redis, "verify")
    sampled = tally(clean_redis, "verify", "--sample", "1")
    snapshot_key = Keys(PARTITIONS).snapshot(REF)
    account = decode_account(await aredis.hget(snapshot_key, "s"))  # type: ignore[arg-type]
    wallet = next(iter(account.wallets.values()))
    tampered = msgspec.structs.replace(account, wallets={wallet.id: msgspec.structs.replace(wallet, name="forged")})
    await aredis.hset(snapshot_key, "s", encode_account(tampered))
    drifted = tally(clean_redis, "verify")
    assert clean.returncode == 0 and "drifts=0" in clean.stdout, clean.stdout + clean.stderr
    assert sampled.returncode == 0 and "accounts=1" in sampled.stdout, sampled.stdout + sampled.stderr
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert f"wallets.{wallet.id}.name" in drifted.stdout and "drifts=1" in drifted.stdout


async def test_verify_reports_an_account_it_cannot_read_or_fold_instead_of_passing(
    clean_redis: str, aredis: Redis
) -> None:
    unreadable, wrong_type = AccountRef("tenant_a", "env_a", "cust_u"), AccountRef("tenant_a", "env_a", "cust_w")
    async with running_app(clean_redis) as client:
        for ref in (unreadable, wrong_type):
            created = await client.post("/v1/wallets", json={"customer_id": ref.customer_id, "currency": "USD"})
            assert created.status_code == 200
            await wait_folded(aredis, ref)
    keys = Keys(PARTITIONS)
    await aredis.hset(keys.snapshot(unreadable), "s", b"\xc1 not an account")
    await aredis.delete(keys.snapshot(wrong_type))
    await aredis.set(keys.snapshot(wrong_type), "a string where a hash belongs")
    result = tally(clean_redis, "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PROBLEM tenant_a/env_a/cust_u: its snapshot cannot be read" in result.stdout, result.stdout
    assert "PROBLEM tenant_a/env_a/cust_w: it cannot be read" in result.stdout and "WRONGTYPE" in result.stdout
    assert "problems=2" in result.stdout and "Traceback" not in result.stderr
