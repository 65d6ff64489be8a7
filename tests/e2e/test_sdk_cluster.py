"""The official SDK against `tally dev` whose TALLY_REDIS_URL names one node of a real 3-primary Redis Cluster, on a
new store (TALLY_PARTITIONS unset: 256 partitions, spread over the three shards): a smoke subset of the SDK suites."""

from collections.abc import Iterator

import pytest
import redis

from tests.e2e.test_sdk import (  # noqa: F401  (collected here too, on the cluster)
    test_the_embedded_projector_folds_what_the_sdk_wrote,
    test_top_ups_with_a_retry_give_an_exact_balance,
)
from tests.e2e.test_sdk_usage import (  # noqa: F401
    rate_card,
    test_a_bulk_with_a_retried_event_charges_it_once,
)
from tests.support.dev_server import DevServer, DevServerFailed, dev_server
from tests.support.redis_cluster import RedisCluster


@pytest.fixture(scope="module")
def tally_dev(redis_cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    redis_cluster.flush()
    try:
        with dev_server(redis_cluster.url, tmp_path_factory.mktemp("tally-dev-cluster"), partitions="0") as server:
            yield server
    except DevServerFailed as exc:
        pytest.fail(str(exc))


def test_a_new_store_on_the_cluster_gets_256_partitions_on_every_shard(tally_dev: DevServer) -> None:
    client = redis.RedisCluster.from_url(tally_dev.redis_url)
    assert client.hget("tally:meta", "partitions") == b"256"
    shards = {client.get_node_from_key(f"tally:{{p{p:03d}}}:feed").name for p in range(256)}
    assert len(shards) == 3
