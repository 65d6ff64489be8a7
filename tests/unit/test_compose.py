"""compose.yaml and compose.cluster.yaml (no Docker engine here): they parse, fail closed without API keys, and run
every process."""

import re
from pathlib import Path
from typing import Any

import yaml

from cli.stores import REDIS_SETTINGS

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def services() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, Any] = document["services"]
    return found


def test_compose_requires_api_keys_and_has_no_fallback_key() -> None:
    keys = services()["api"]["environment"]["TALLY_API_KEYS"]
    assert re.fullmatch(r"\$\{TALLY_API_KEYS:\?.+\}", keys), keys
    assert "change-me" not in COMPOSE.read_text()
    assert ":-" not in keys


def test_compose_runs_the_api_public_the_projector_and_the_webhook_sender() -> None:
    found = services()
    assert {"redis", "api", "projector", "webhooks"} <= set(found)
    assert found["api"]["command"][:1] == ["api"] and "0.0.0.0" in found["api"]["command"]
    assert found["projector"]["command"] == ["projector"]
    assert found["webhooks"]["command"] == ["webhooks"]
    for name in ("projector", "webhooks"):
        assert found[name]["environment"]["TALLY_REDIS_URL"] == found["api"]["environment"]["TALLY_REDIS_URL"]
        assert found[name]["environment"]["TALLY_PARTITIONS"] == found["api"]["environment"]["TALLY_PARTITIONS"]
        assert found[name]["stop_signal"] == "SIGTERM"


def test_compose_runs_redis_with_the_settings_tally_is_sized_for() -> None:
    command = services()["redis"]["command"]
    assert " ".join(REDIS_SETTINGS) in " ".join(command), command


CLUSTER = COMPOSE.parent / "compose.cluster.yaml"


def cluster_services() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CLUSTER.read_text())
    found: dict[str, Any] = document["services"]
    return found


def test_the_cluster_file_runs_three_primaries_with_a_replica_each_formed_once() -> None:
    found = cluster_services()
    nodes = [name for name in found if name.startswith("redis-")]
    assert len(nodes) == 6
    addresses = {found[n]["networks"]["tally"]["ipv4_address"] for n in nodes}
    for name in nodes:
        command = " ".join(found[name]["command"])
        assert "--cluster-enabled yes" in command and " ".join(REDIS_SETTINGS) in command, command
        assert "--appendfsync always" in command
    create = found["cluster-init"]["command"][-1]
    assert "--cluster-replicas 1" in create and {f"{a}:6379" for a in addresses} <= set(create.split())
    assert set(found["cluster-init"]["depends_on"]) == set(nodes)


def test_the_cluster_file_runs_the_api_two_projectors_and_the_sender_on_the_cluster_waiting_for_a_replica() -> None:
    found = cluster_services()
    keys = found["api"]["environment"]["TALLY_API_KEYS"]
    assert re.fullmatch(r"\$\{TALLY_API_KEYS:\?.+\}", keys), keys
    tally = {name: s for name, s in found.items() if "build" in s}
    assert [s["command"][0] for s in tally.values()].count("projector") == 2
    assert {"api", "webhooks"} <= set(tally)
    nodes = {s["networks"]["tally"]["ipv4_address"] for n, s in found.items() if n.startswith("redis-")}
    for name, service in tally.items():
        environment = service["environment"]
        host = environment["TALLY_REDIS_URL"].removeprefix("redis://").split(":")[0]
        assert host in nodes and environment["TALLY_WAIT_REPLICAS"] == "1", name
        assert "TALLY_PARTITIONS" not in environment  # a new store: the default, spread over the shards
        assert service["depends_on"]["cluster-init"]["condition"] == "service_completed_successfully"
