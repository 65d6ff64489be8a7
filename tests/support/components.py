"""Component settings for tests that build a projector, sender, archiver or app by hand: `Settings()`'s values
(the one place defaults are declared) through cli/components.py, with the test's overrides on top."""

from typing import Any

import msgspec

from api.app import ApiConfig
from api.auth import Principal
from cli import components
from cli.settings import Settings
from projector.webhooks import SenderSettings
from projector.worker import ProjectorSettings
from store.archive.archiver import ArchiveSettings


def projector_settings(holder: str, **overrides: Any) -> ProjectorSettings:
    return msgspec.structs.replace(components.projector_settings(Settings(), holder), **overrides)


def sender_settings(holder: str, **overrides: Any) -> SenderSettings:
    return msgspec.structs.replace(components.sender_settings(Settings(), holder), **overrides)


def archive_settings(holder: str, **overrides: Any) -> ArchiveSettings:
    return msgspec.structs.replace(components.archive_settings(Settings(), holder), **overrides)


def api_config(api_keys: dict[str, Principal], partitions: int, **overrides: Any) -> ApiConfig:
    settings = Settings(partitions=partitions)
    return msgspec.structs.replace(components.api_config(settings, api_keys), **overrides)
