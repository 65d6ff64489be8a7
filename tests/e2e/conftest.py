"""`tally dev` as a real subprocess on the test Redis, and the official Flexprice SDK pointed at it."""

from collections.abc import Iterator

import pytest
from flexprice import Flexprice

from tests.support.dev_server import KEY, DevServer, DevServerFailed, dev_server
from tests.support.redis_cluster import flush_store


@pytest.fixture(scope="module")
def tally_dev(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """`tally dev` on the flushed test Redis for this module's tests, killed at teardown."""
    flush_store(redis_url)
    try:
        with dev_server(redis_url, tmp_path_factory.mktemp("tally-dev")) as server:
            yield server
    except DevServerFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def sdk(tally_dev: DevServer) -> Iterator[Flexprice]:
    """The official SDK exactly as a user would build it (no retries: a retry in a test is an explicit call)."""
    with Flexprice(server_url=f"{tally_dev.url}/v1", api_key_auth=KEY, timeout_ms=10_000) as client:
        yield client
