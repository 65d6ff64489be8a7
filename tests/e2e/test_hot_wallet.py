"""A hot wallet: 8 clients debit one wallet at once, through one `tally api` process and through two, for a fixed
time. No 409, and the books balance: the final balance is the initial one minus every acknowledged debit, and each
acknowledged debit is listed exactly once. The rate is printed (bench/hotwallet.py judges it; this test does not)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.hot_clients import book_problems, create_wallet, post_for, read_books
from tests.support.dev_server import DevServerFailed, api_server
from tests.support.redis_cluster import flush_store
from tests.support.split_processes import API_KEY, ENVIRONMENT, TENANT, SplitProcesses, split_processes

SECONDS = 3.0
CLIENTS = 8
INITIAL = 1_000_000
HEADERS = {"x-api-key": API_KEY}


@pytest.fixture
def processes(redis_url: str, tmp_path: Path) -> Iterator[SplitProcesses]:
    flush_store(redis_url)
    try:
        with split_processes(redis_url, tmp_path) as running:
            yield running
    except DevServerFailed as exc:
        pytest.fail(str(exc))


async def _debit_and_check(urls: list[str], label: str) -> None:
    wallet_id = await create_wallet(urls[0], HEADERS, f"hot_{label}", INITIAL)
    run = await post_for(urls, f"/v1/wallets/{wallet_id}/debit", HEADERS, SECONDS, CLIENTS)
    print(f"\nhot wallet, {CLIENTS} clients through {label}: {run.describe()}")
    books = await read_books(urls[0], HEADERS, wallet_id)
    assert run.acknowledged > 0, run.describe()
    assert book_problems(run, books, INITIAL) == [], run.describe()
    assert set(run.statuses) <= {200, 503}, run.describe()


async def test_eight_clients_debit_one_wallet_through_one_process(processes: SplitProcesses) -> None:
    await _debit_and_check([processes.url], "1 API process")


async def test_eight_clients_debit_one_wallet_through_two_processes(
    processes: SplitProcesses, redis_url: str, tmp_path: Path
) -> None:
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    keys = f"{API_KEY}:{TENANT}:{ENVIRONMENT}"
    with api_server(redis_url, second_dir, api_keys=keys, request_log="false", log_level="WARNING") as second:
        await _debit_and_check([processes.url, second.url], "2 API processes")
    assert processes.running(), processes.log_tails()
