"""store/node_links.py through Script.run_each, on a real single server and a real 3-primary cluster: each call
goes to its node and answers in call order, without the client's pipeline; a call the cluster redirects, or one on
a connection that fails, runs again through the client and takes effect once; a script the server forgot runs from
its source. A batch of one slot (run_together) that a node did not run goes through the client."""

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as ClusterClient

from cli.stores import free_port
from store.connect import connect, node_of
from store.node_links import NodeLinks, run_together
from store.pipelined import PipelinedConnection
from store.scripts import Script
from tests.support.harness import running_app
from tests.support.redis_cluster import RedisCluster

SOURCE = "redis.call('INCRBY', KEYS[1], ARGV[1]) return {KEYS[1], redis.call('GET', KEYS[1])}"
KEYS = [f"t:{{p{n}}}:counter" for n in range(48)]
single_only = pytest.mark.skipif(bool(os.environ.get("TALLY_TEST_CLUSTER")), reason="a single server's case")


@pytest.fixture
async def cluster(redis_cluster: RedisCluster) -> AsyncIterator[Redis]:
    redis_cluster.flush()
    client = connect(redis_cluster.url)
    try:
        await client.ping()  # the slot map
        yield client
    finally:
        await client.aclose()


def calls() -> list[tuple[list[str], list[Any]]]:
    """Every key twice, the second time further on, with increments that tell the calls apart."""
    return [([key], [n + 1]) for n, key in enumerate(KEYS)] + [([key], [1000]) for key in KEYS]


def expected() -> list[list[bytes]]:
    first = [[key.encode(), str(n + 1).encode()] for n, key in enumerate(KEYS)]
    return first + [[key.encode(), str(n + 1001).encode()] for n, key in enumerate(KEYS)]


async def run(redis: Redis, links: NodeLinks, monkeypatch: pytest.MonkeyPatch, through_client: int,
              forgotten: bool = False) -> None:
    """Run calls() over `links` (the script loaded, unless `forgotten`), asserting how many calls went through the
    client's pipeline, and their effect."""
    script = Script(redis, SOURCE)
    script.links = links
    client: Any = redis
    if not forgotten:
        await client.script_load(SOURCE)  # every primary on a cluster
    seen: list[int] = []
    pipelined = script._pipelined

    async def counted(command: str, source: str, batch: Any, wait: Any) -> list[Any]:
        seen.append(len(batch))
        return await pipelined(command, source, batch, wait)

    monkeypatch.setattr(script, "_pipelined", counted)
    try:
        assert await script.run_each(calls()) == expected()
    finally:
        await links.aclose()
    assert sum(seen) == through_client
    assert [int(await client.get(key)) for key in KEYS] == [n + 1001 for n in range(len(KEYS))]


@single_only
async def test_on_a_single_server_the_calls_go_over_its_connection(aredis: Redis,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    links = NodeLinks.of(aredis)
    assert links is not None and links.single is not None
    await run(aredis, links, monkeypatch, through_client=0)


async def test_on_a_cluster_each_call_goes_to_its_primary(cluster: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    links = NodeLinks.of(cluster)
    assert links is not None and links.single is None
    await run(cluster, links, monkeypatch, through_client=0)
    assert len(links.links) == 3 and all(link is not None for link in links.links.values())


async def test_a_call_the_cluster_redirects_runs_again_through_the_client_once(
    cluster: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link of one primary points at another: that primary's calls come back MOVED (not run) and run again
    through the client, which finds their node; each counter still ends at its two increments."""
    links = NodeLinks.of(cluster)
    assert links is not None
    owner = node_of(cluster, KEYS[0])
    other = next(name for key in KEYS if (name := node_of(cluster, key)) != owner)
    assert owner is not None and other is not None
    host, port = other.rsplit(":", 1)
    links.links[owner] = PipelinedConnection(host, int(port))
    moved = 2 * sum(node_of(cluster, key) == owner for key in KEYS)
    await run(cluster, links, monkeypatch, through_client=moved)


@single_only
async def test_calls_on_a_connection_that_fails_run_again_through_the_client(
    aredis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = NodeLinks(aredis, PipelinedConnection("127.0.0.1", free_port()))  # nothing listens there
    await run(aredis, links, monkeypatch, through_client=len(calls()))


async def test_a_script_the_server_forgot_runs_from_its_source(clean_redis: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    redis = connect(clean_redis)
    try:
        links = NodeLinks.of(redis)
        assert links is not None
        client: Any = redis
        await client.script_flush()  # every primary on a cluster
        await run(redis, links, monkeypatch, through_client=len(calls()), forgotten=True)  # EVAL, through the client
    finally:
        await redis.aclose()


async def test_a_single_call_on_a_cluster_goes_over_the_links_too(cluster: Redis,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A script with call links and no connection of its own (the API's on a cluster) sends a lone call over them."""
    links = NodeLinks.of(cluster)
    assert links is not None
    script = Script(cluster, SOURCE)
    script.call_links = links
    client: Any = cluster
    await client.script_load(SOURCE)

    async def refused(*_: Any) -> list[Any]:
        raise AssertionError("a call went through the client's pipeline")

    monkeypatch.setattr(script, "_pipelined", refused)
    try:
        assert [await script([key], [n]) for n, key in enumerate(KEYS)] == [[k.encode(), str(n).encode()]
                                                                           for n, k in enumerate(KEYS)]
    finally:
        await links.aclose()


async def test_a_batch_a_cluster_node_did_not_run_runs_again_through_the_client(cluster: Redis) -> None:
    """run_together over a connection to the wrong primary: MOVED (a transaction's queued commands too), and the
    client runs the batch on the right one; over the right primary's connection it runs there."""
    links = NodeLinks.of(cluster)
    assert links is not None
    key = KEYS[0]
    owner = node_of(cluster, key)
    wrong = next(name for k in KEYS if (name := node_of(cluster, k)) != owner)
    assert owner is not None and wrong is not None
    host, port = wrong.rsplit(":", 1)
    elsewhere = PipelinedConnection(host, int(port))
    client: Any = cluster
    try:
        for direct in (elsewhere, links.link(key)):
            for transaction in (False, True):
                await client.delete(key)
                replies = await run_together(cluster, direct, [("INCRBY", key, 5), ("GET", key)], transaction)
                assert replies == [5, b"5"]
                assert int(await client.get(key)) == 5
    finally:
        await elsewhere.aclose()
        await links.aclose()


def test_a_client_over_tls_keeps_its_own_path() -> None:
    """TLS is the client's to do: no links for a TLS cluster or server (nothing is connected to build them)."""
    assert NodeLinks.of(ClusterClient.from_url("rediss://127.0.0.1:7000")) is None
    assert NodeLinks.of(Redis.from_url("rediss://127.0.0.1:7000")) is None
    assert NodeLinks.of(ClusterClient.from_url("redis://127.0.0.1:7000")) is not None


async def test_in_the_api_a_bulk_and_the_single_calls_have_connections_apart(clean_redis: str) -> None:
    """A bulk's batch on the connection that balance reads and single appends use would hold them behind it (a
    server answers a connection's commands in order): the API gives bulks connections of their own."""
    async with running_app(clean_redis, projector=False) as client:
        transport: Any = client._transport
        scripts = transport.app.state.accounts.store.scripts
        bulk = scripts.append_usage.links
        assert bulk is not None and scripts.append.links is bulk
        if scripts.read.connection is not None:  # a single server: the hot calls' one connection
            assert bulk.single is not None and bulk.single is not scripts.read.connection
            assert scripts.append.connection is scripts.read.connection
        else:  # a cluster: the hot calls' own links
            assert scripts.read.call_links is not None and scripts.read.call_links is not bulk
            assert scripts.append.call_links is scripts.read.call_links
