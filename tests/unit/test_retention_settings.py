"""Retention settings: documented defaults, read from TALLY_* variables, nonsense refused at start-up."""

import pytest

from cli.components import retention_settings
from cli.settings import Settings
from domain.errors import ValidationFailed


def test_retention_defaults_and_overrides_reach_the_retention_task() -> None:
    default = Settings.from_env({})
    assert (default.alerts_retention_seconds, default.operations_retention_seconds,
            default.webhook_delivery_retention_seconds) == (86_400, 365 * 86_400, 7 * 86_400)
    assert (default.retention_interval_ms, default.retention_batch) == (10_000, 1000)
    custom = retention_settings(Settings.from_env({"TALLY_ALERTS_RETENTION_SECONDS": "60",
                                                   "TALLY_RETENTION_BATCH": "7"}))
    assert (custom.alerts_keep_ms, custom.batch) == (60_000, 7)


@pytest.mark.parametrize(("name", "value"), [("TALLY_RETENTION_INTERVAL_MS", "0"), ("TALLY_RETENTION_BATCH", "-1"),
                                             ("TALLY_ALERTS_RETENTION_SECONDS", "-5"),
                                             ("TALLY_WEBHOOK_DELIVERY_RETENTION_SECONDS", "soon")])
def test_a_retention_setting_out_of_range_stops_start_up(name: str, value: str) -> None:
    with pytest.raises(ValidationFailed):
        Settings.from_env({name: value})


def test_a_feed_kept_whole_is_not_trimmed_by_retention_either() -> None:
    assert retention_settings(Settings.from_env({})).trim_feed
    assert not retention_settings(Settings.from_env({"TALLY_TRIM_EVERY_BATCHES": "0"})).trim_feed
