"""compose.yaml (no Docker engine here): it parses, fails closed without API keys, and runs every process."""

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
