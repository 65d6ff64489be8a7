"""Each component's settings, built from the one `Settings` by one function: no default is written twice.

The component structs (ProjectorSettings, SenderSettings, …) declare no default for anything an operator sets with
TALLY_*; the values come from `cli.settings.Settings` through these functions only. What is not an operator setting
(a sender's poll interval, an archive round's row bound) is declared once, in its component.
"""

from api.app import ApiConfig
from api.auth import Principal, parse_operator_keys
from api.limits import BodyBounds
from cli.serve import TransportBounds
from cli.settings import Settings
from projector.retention import RetentionSettings
from projector.webhooks import SenderSettings
from projector.worker import ProjectorSettings
from store.archive.archiver import ArchiveSettings
from store.keys import Keys
from store.scripts import Replicated

# A projector counts as live for two lease TTLs after its last heartbeat (it beats every third of a TTL): one slow
# heartbeat does not make the other projectors take its share of the partitions.
MEMBERSHIP_TTL_LEASES = 2
# An archive round writes Parquet segments to object storage between renewals, far slower than a fold batch: its
# lease lives six projector lease TTLs, and never less than a second.
ARCHIVE_LEASE_TTL_LEASES = 6
ARCHIVE_LEASE_TTL_MIN_MS = 1000
ARCHIVE_TRIM_CHUNK = 200  # accounts trimmed per step of an archive round (1 under fault injection)


def projector_settings(settings: Settings, holder: str) -> ProjectorSettings:
    return ProjectorSettings(
        holder=holder, batch_size=settings.batch_size, block_ms=settings.block_ms, lease_ttl_ms=settings.lease_ttl_ms,
        period_grace_seconds=settings.period_grace_seconds, clock_interval_ms=settings.clock_interval_ms,
        trim_every_batches=settings.trim_every_batches,
    )


def membership_ttl_ms(settings: Settings) -> int:
    return settings.lease_ttl_ms * MEMBERSHIP_TTL_LEASES


def retention_settings(settings: Settings) -> RetentionSettings:
    return RetentionSettings(interval_ms=settings.retention_interval_ms, trim_feed=settings.trim_every_batches > 0,
                             batch=settings.retention_batch,
                             alerts_keep_ms=settings.alerts_retention_seconds * 1000,
                             operations_keep_ms=settings.operations_retention_seconds * 1000)


def sender_settings(settings: Settings, holder: str) -> SenderSettings:
    return SenderSettings(
        holder=holder, max_attempts=settings.webhook_max_attempts, backoff_base_ms=settings.webhook_backoff_base_ms,
        timeout_ms=settings.webhook_timeout_ms, lease_ttl_ms=settings.lease_ttl_ms,
        concurrency=settings.webhook_concurrency, concurrency_per_tenant=settings.webhook_concurrency_per_tenant,
        concurrency_per_endpoint=settings.webhook_concurrency_per_endpoint,
        retention_interval_ms=settings.retention_interval_ms, retention_batch=settings.retention_batch,
        delivery_keep_ms=settings.webhook_delivery_retention_seconds * 1000,
    )


def archive_settings(settings: Settings, holder: str, stop_at: str = "") -> ArchiveSettings:
    """With a fault-injection point, trims go one account at a time, so that `trimming` stops mid-trim."""
    return ArchiveSettings(holder=holder, after_ms=settings.archive_after_ms,
                           lease_ttl_ms=max(settings.lease_ttl_ms * ARCHIVE_LEASE_TTL_LEASES, ARCHIVE_LEASE_TTL_MIN_MS),
                           stop_at=stop_at, trim_chunk=1 if stop_at else ARCHIVE_TRIM_CHUNK)


def body_bounds(settings: Settings) -> BodyBounds:
    return BodyBounds(limit_bytes=settings.body_limit_bytes, bulk_limit_bytes=settings.bulk_body_limit_bytes,
                      timeout_seconds=settings.body_timeout_seconds)


def api_config(settings: Settings, api_keys: dict[str, Principal]) -> ApiConfig:
    return ApiConfig(api_keys=api_keys, keys=Keys(settings.partitions), dedup_ttl_seconds=settings.dedup_ttl_seconds,
                     max_future_skew_seconds=settings.max_future_skew_seconds, request_log=settings.request_log,
                     webhook_allow_private=settings.webhook_allow_private, body=body_bounds(settings),
                     operator_keys=parse_operator_keys(settings.operator_keys), ledger_keep=settings.ledger_keep,
                     replicated=replicated(settings))


def replicated(settings: Settings) -> Replicated | None:
    """TALLY_WAIT_REPLICAS (0: appends are not waited for) with TALLY_WAIT_TIMEOUT_MS."""
    return Replicated(settings.wait_replicas, settings.wait_timeout_ms) if settings.wait_replicas else None


def transport_bounds(settings: Settings) -> TransportBounds:
    return TransportBounds(header_limit_bytes=settings.header_limit_bytes,
                           header_timeout_seconds=settings.header_timeout_seconds,
                           keep_alive_seconds=settings.keep_alive_seconds, max_concurrency=settings.max_concurrency)
