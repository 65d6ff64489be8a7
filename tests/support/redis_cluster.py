"""A real local Redis Cluster for tests: 3 primaries (optionally with a replica each) from Debian's redis-server, on
free loopback ports (each port + 10000, the cluster bus, free too), created with `redis-cli --cluster create`.
A node SIGKILLed (`kill`) can be started again on its port (`restart`): it rejoins from its nodes.conf, as a replica of
whichever node took its slots over."""

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from cli.stores import REDIS_SETTINGS
from store.connect import is_cluster


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(count: int) -> list[int]:
    """`count` ports whose cluster bus ports (+10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port < 55535 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


def have_cluster_tools() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


class RedisCluster:
    """`primaries` primaries, `replicas` replicas each; `kill(port)` SIGKILLs one node (a failover follows)."""

    def __init__(self, data_dir: Path, primaries: int = 3, replicas: int = 0, node_timeout_ms: int = 2000,
                 extra: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.extra = list(extra)  # more redis-server options, after the defaults (a bench turns AOF on)
        self.replicas = replicas
        self.primary_count = primaries
        self.node_timeout_ms = node_timeout_ms
        self.ports = cluster_ports(primaries * (1 + replicas))
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port in self.ports:
            self.processes[port] = self._node(port)
        for port in self.ports:
            _poll(lambda p=port: redis.Redis(port=p).ping(), f"node {port} did not answer")
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                       "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        self.wait_ready()

    def wait_ready(self, seconds: float = 30) -> None:
        """Poll until every running node says cluster_state:ok and (with replicas) each primary has its replicas
        online."""
        for port in list(self.processes):
            _poll(lambda p=port: self._ready(p), f"node {port} did not reach cluster_state:ok", seconds)

    def _node(self, port: int) -> subprocess.Popen[bytes]:
        node_dir = self.data_dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", str(self.node_timeout_ms),
             "--save", "", "--appendonly", "no", "--dir", str(node_dir.resolve()), "--logfile", "redis.log",
             *REDIS_SETTINGS, *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def _ready(self, port: int) -> bool:
        if "cluster_state:ok" not in _text(redis.Redis(port=port).execute_command("CLUSTER", "INFO")):
            return False
        if self.replicas:  # every replica attached and in sync
            roles = redis.Redis(port=port).info("replication")
            online = [n for n in range(self.replicas) if roles.get(f"slave{n}", {}).get("state") == "online"]
            return roles.get("role") != "master" or len(online) == self.replicas
        return True

    def failed_over(self) -> bool:
        """Every slot served again after a primary was killed: as many primaries as at the start among the nodes
        still running, each saying cluster_state:ok."""
        try:
            return len(self.primaries()) == self.primary_count and all(
                "cluster_state:ok" in _text(redis.Redis(port=p).execute_command("CLUSTER", "INFO"))
                for p in self.processes)
        except redis.RedisError:
            return False

    def flush(self) -> None:
        """Empty every primary (a replica refuses FLUSHALL and follows its primary)."""
        for port in self.ports:
            client = redis.Redis(port=port)
            if client.info("replication").get("role") == "master":
                client.flushall()

    def primaries(self) -> list[int]:
        return [p for p in self.ports if p in self.processes
                and redis.Redis(port=p).info("replication").get("role") == "master"]

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def restart(self, port: int) -> None:
        """Start a killed node again on its port and data directory (it has no data: it resyncs as a replica)."""
        assert port not in self.processes, f"node {port} is running"
        self.processes[port] = self._node(port)

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=10)
        self.processes.clear()


def flush_store(url: str) -> None:
    """Empty the store at `url`: every primary of a cluster."""
    if is_cluster(url):
        redis.RedisCluster.from_url(url).flushall()
    else:
        redis.Redis.from_url(url).flushdb()


def _text(reply: object) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _poll(ready: object, failure: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if callable(ready) and ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.05)
