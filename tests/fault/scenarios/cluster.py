"""What the Redis Cluster scenarios share: a local cluster of their own, the store objects on it (opened through
store/connect.py, as every process opens them), and `tally verify` run against it."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from store.connect import connect, node_of
from store.eventstore import EventStore
from store.keys import Keys
from store.projection import Projection
from tests.support.faults_processes import run_tally, tally_env
from tests.support.redis_cluster import RedisCluster, have_cluster_tools

DEDUP_TTL = 3600


@dataclass
class ClusterStage:
    cluster: RedisCluster
    redis: Redis
    keys: Keys
    store: EventStore
    projection: Projection
    logs: Path

    @property
    def url(self) -> str:
        return self.cluster.url

    def env(self, **settings: str) -> dict[str, str]:
        return tally_env(self.url, self.keys.partitions, **settings)

    def nodes(self) -> dict[int, str]:
        """The primary (host:port) holding each partition's keys."""
        return {p: node_of(self.redis, self.keys.feed(p)) or "?" for p in range(self.keys.partitions)}

    async def verify(self) -> tuple[int, str]:
        """`tally verify` as an operator runs it: every account folded from zero and compared with its snapshot;
        (exit code, its summary line)."""
        code, out = await run_tally(self.env(log_level="WARNING"), "verify", timeout=120)
        summary = re.findall(r"verified accounts=.*", out)
        return code, summary[-1] if summary else out.strip()[-300:]


@contextlib.asynccontextmanager
async def cluster_stage(tmp_path: Path, partitions: int, replicas: int = 0,
                        node_timeout_ms: int = 2000) -> AsyncIterator[ClusterStage]:
    """A 3-primary cluster of the scenario's own (`replicas` each), stopped whatever happens."""
    assert have_cluster_tools(), "redis-server and redis-cli are not on PATH"
    logs = tmp_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cluster = RedisCluster(tmp_path / "cluster", replicas=replicas, node_timeout_ms=node_timeout_ms)
    try:
        await asyncio.to_thread(cluster.start)
        redis, keys = connect(cluster.url), Keys(partitions)
        try:
            yield ClusterStage(cluster, redis, keys, EventStore(redis, keys, DEDUP_TTL), Projection(redis, keys), logs)
        finally:
            with contextlib.suppress(Exception):
                await redis.aclose()
    finally:
        cluster.stop()
