"""The README's DuckDB query over segments the archiver wrote, and the archive on an S3-compatible bucket (moto's
server, started here on loopback)."""

import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import boto3
import duckdb
import pytest
from moto.server import ThreadedMotoServer
from redis.asyncio import Redis

from store.eventstore import EventStore
from store.keys import Keys
from tests.integration.test_archive import CUSTOMERS, history
from tests.support.archive import archive_env, stream_lengths, tally, whole_logs
from tests.support.harness import PARTITIONS

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_query() -> str:
    """The SQL block under the README's DuckDB example (the one test that keeps the README honest)."""
    text = README.read_text()
    start = text.index("```sql\n", text.index("what did customer")) + len("```sql\n")
    return text[start:text.index("```", start)]


async def test_the_readme_duckdb_query_answers_what_a_customer_used_in_march(
    clean_redis: str, aredis: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await history(clean_redis, aredis)
    done = tally(clean_redis, "archive", env=archive_env(tmp_path / ".tally" / "archive"))
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.chdir(tmp_path)
    rows = duckdb.sql(readme_query().replace("cust_42", CUSTOMERS[1])).fetchall()
    # cust_a2 (n=1): six usage events in March of 2..7 tokens at 0.5 USD a token
    assert rows == [("api_call", 6, Decimal("27"), Decimal("13.5"), "usd")]


@pytest.fixture
def moto_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def test_the_archive_on_an_s3_bucket_reads_as_before(
    clean_redis: str, aredis: Redis, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = {"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=moto_url).create_bucket(Bucket="tally-archive")
    await history(clean_redis, aredis)
    store = EventStore(aredis, Keys(PARTITIONS), 3600)
    before = await whole_logs(store)
    done = tally(clean_redis, "archive", env={**aws, **archive_env("s3://tally-archive/prod")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert await stream_lengths(store) == 0
    listed = boto3.client("s3", endpoint_url=moto_url).list_objects_v2(Bucket="tally-archive", Prefix="prod/")
    assert [o["Key"] for o in listed["Contents"] if o["Key"].endswith(".parquet")]
    assert await whole_logs(store) == before
    compared = tally(clean_redis, "replay", "--dry-run", env=aws)
    assert compared.returncode == 0 and "drifts=0" in compared.stdout, compared.stdout + compared.stderr
