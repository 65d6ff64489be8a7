"""One typed settings object per process, read once from TALLY_* variables; a misspelt one stops start-up."""

import os
from collections.abc import Mapping

import msgspec

from domain.errors import ValidationFailed

PREFIX = "TALLY_"
IGNORED_PREFIXES = ("TALLY_TEST_", "TALLY_BUILD_")  # the tests' and the build's (setup.py)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str | None = None
    api_keys: str = ""
    wait_replicas: int = 0  # 0: an append is answered once its primary has it (README "Durability on failover")
    wait_timeout_ms: int = 1000
    partitions: int = 0  # 0: the store's recorded count; a new store gets store.meta.DEFAULT_PARTITIONS
    dedup_ttl_seconds: int = 35 * 24 * 3600
    batch_size: int = 1000
    block_ms: int = 50
    lease_ttl_ms: int = 5000
    period_grace_seconds: int = 3600
    clock_interval_ms: int = 1000
    trim_every_batches: int = 50
    # retention of what grows with time (README: Retention)
    retention_interval_ms: int = 10_000
    retention_batch: int = 1000
    alerts_retention_seconds: int = 24 * 3600
    operations_retention_seconds: int = 365 * 24 * 3600
    webhook_delivery_retention_seconds: int = 7 * 24 * 3600
    max_future_skew_seconds: int = 300
    webhook_max_attempts: int = 8
    webhook_backoff_base_ms: int = 1000
    webhook_timeout_ms: int = 5000  # total deadline of one attempt: connect, send, whole reply
    webhook_allow_private: bool = False  # `tally dev` turns it on unless set
    webhook_concurrency: int = 64
    webhook_concurrency_per_tenant: int = 8
    webhook_concurrency_per_endpoint: int = 2
    request_log: bool = True
    log_level: str = "INFO"
    data_dir: str = ".tally"
    # HTTP transport bounds and the operator credential (README: Settings, Limits)
    operator_keys: str = ""
    body_limit_bytes: int = 1 << 20
    bulk_body_limit_bytes: int = 8 << 20
    body_timeout_seconds: float = 10.0
    header_limit_bytes: int = 16 << 10
    header_timeout_seconds: float = 10.0
    keep_alive_seconds: int = 5
    max_concurrency: int = 1000
    # The archive of folded history (README: Archive)
    archive_url: str = ""  # a directory or s3://bucket/prefix; empty: <data_dir>/archive
    archive_after: str = "1d"  # entries older than this (and folded everywhere) leave Redis
    archive_interval_seconds: int = 600  # how often a projector archives the partitions it holds (0: never)
    ledger_keep: int = 1000  # ledger entries Redis keeps per wallet; older ones are folded from the log (archive)

    @property
    def archive_location(self) -> str:
        return self.archive_url or os.path.join(self.data_dir, "archive")

    @property
    def archive_after_ms(self) -> int:
        return duration_ms(self.archive_after)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        known = set(cls.__struct_fields__)
        values: dict[str, str] = {}
        for name, value in environ.items():
            if not name.startswith(PREFIX) or name.startswith(IGNORED_PREFIXES):
                continue
            field = name[len(PREFIX):].lower()
            if field not in known:
                names = ", ".join(sorted(PREFIX + k.upper() for k in known))
                raise ValidationFailed(f"unknown setting {name}; known: {names}")
            values[field] = value
        try:
            settings = msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValidationFailed(f"bad setting: {exc}") from exc
        if settings.partitions < 0 or settings.partitions > 1024:
            raise ValidationFailed("TALLY_PARTITIONS must be between 1 and 1024 (or 0: the store's own count)")
        if min(settings.webhook_timeout_ms, settings.webhook_concurrency, settings.webhook_concurrency_per_tenant,
               settings.webhook_concurrency_per_endpoint) < 1:
            raise ValidationFailed("TALLY_WEBHOOK_TIMEOUT_MS and TALLY_WEBHOOK_CONCURRENCY* must be at least 1")
        _check_http_bounds(settings)
        try:
            duration_ms(settings.archive_after)
        except ValueError as exc:
            raise ValidationFailed(f"TALLY_ARCHIVE_AFTER: {exc}") from exc
        _check_retention(settings)
        if settings.wait_replicas < 0 or settings.wait_timeout_ms < 1:
            raise ValidationFailed("TALLY_WAIT_REPLICAS must be 0 or more and TALLY_WAIT_TIMEOUT_MS at least 1")
        return settings


UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(value: str) -> int:
    """`90s`, `10m`, `12h`, `1d`, `250ms` or a number of seconds, as milliseconds."""
    number, unit = value.strip(), "s"
    for suffix in sorted(UNITS_MS, key=len, reverse=True):
        if number.endswith(suffix):
            number, unit = number[:-len(suffix)], suffix
            break
    if not number.isdigit() or len(number) > 9:
        raise ValueError(f"{value!r} is not a duration such as 90s, 10m, 12h or 1d")
    return int(number) * UNITS_MS[unit]


def _check_http_bounds(settings: Settings) -> None:
    for name in ("body_limit_bytes", "bulk_body_limit_bytes", "body_timeout_seconds", "header_limit_bytes",
                 "header_timeout_seconds", "keep_alive_seconds", "max_concurrency"):
        if getattr(settings, name) <= 0:
            raise ValidationFailed(f"{PREFIX}{name.upper()} must be greater than 0")


def _check_retention(settings: Settings) -> None:
    for name in ("retention_interval_ms", "retention_batch", "ledger_keep"):
        if getattr(settings, name) <= 0:
            raise ValidationFailed(f"{PREFIX}{name.upper()} must be greater than 0")
    for name in ("alerts_retention_seconds", "operations_retention_seconds", "webhook_delivery_retention_seconds"):
        if getattr(settings, name) < 0:
            raise ValidationFailed(f"{PREFIX}{name.upper()} must be 0 or more")
