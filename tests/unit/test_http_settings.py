"""The HTTP bounds and the operator credential as settings: defaults, parsing, and refusal of nonsense."""

import pytest

from api.auth import Principal, check_operator, parse_operator_keys
from cli.settings import Settings
from domain.errors import Forbidden, TallyError, Unauthenticated, ValidationFailed


def test_http_bounds_have_documented_defaults_and_read_from_the_environment() -> None:
    default = Settings.from_env({})
    assert (default.body_limit_bytes, default.bulk_body_limit_bytes) == (1 << 20, 8 << 20)
    assert (default.header_limit_bytes, default.header_timeout_seconds) == (16 << 10, 10.0)
    assert (default.body_timeout_seconds, default.keep_alive_seconds, default.max_concurrency) == (10.0, 5, 1000)
    assert default.operator_keys == ""
    custom = Settings.from_env({"TALLY_BODY_TIMEOUT_SECONDS": "0.5", "TALLY_OPERATOR_KEYS": "a, b"})
    assert custom.body_timeout_seconds == 0.5
    assert parse_operator_keys(custom.operator_keys) == frozenset({"a", "b"})


@pytest.mark.parametrize("name", ["TALLY_BODY_LIMIT_BYTES", "TALLY_HEADER_TIMEOUT_SECONDS", "TALLY_MAX_CONCURRENCY"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_bound_that_is_not_positive_stops_start_up(name: str, value: str) -> None:
    with pytest.raises(ValidationFailed, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(("operators", "key", "error"), [
    (frozenset(), "op", Forbidden),  # no operator key configured: nobody
    (frozenset({"op"}), None, Unauthenticated),
    (frozenset({"op"}), "tenant-key", Forbidden),
    (frozenset({"op"}), "unknown", Unauthenticated),
])
def test_only_a_configured_operator_key_passes(operators: frozenset[str], key: str | None,
                                               error: type[TallyError]) -> None:
    with pytest.raises(error):
        check_operator(operators, {"tenant-key": Principal("t", "e")}, key)
    check_operator(frozenset({"op"}), {}, "op")
