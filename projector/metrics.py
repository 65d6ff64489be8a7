"""The Prometheus metrics of the workers: projector, webhook sender, retention and their shared runtime."""

from prometheus_client import Counter, Gauge, Histogram

FOLDED = Counter("tally_projector_events_folded_total", "Events applied to snapshots", ["partition"])
BATCH_SECONDS = Histogram("tally_projector_batch_seconds", "Read-fold-commit time of one batch",
                          buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
LAG_EVENTS = Gauge("tally_projector_lag_events", "Feed entries not folded yet", ["partition"])
LAG_SECONDS = Gauge("tally_projector_lag_seconds", "Age of the oldest unfolded feed entry", ["partition"])
HALTED = Gauge("tally_projector_halted_partitions", "Partitions stopped on an entry they cannot decode")
QUARANTINED = Gauge("tally_projector_quarantined_accounts",
                    "Accounts set aside on an entry they cannot fold, per partition held", ["partition"])
LEASES = Counter("tally_projector_lease_changes_total", "Partition leases taken, lost or released", ["change"])
ALERTS = Counter("tally_alerts_emitted_total", "Notices offered to the alerts streams", ["kind"])
CLOCK_EVENTS = Counter("tally_clock_events_total", "Events the clock appended", ["kind"])
WEBHOOKS = Counter("tally_webhook_attempts_total", "Webhook delivery attempts by outcome", ["outcome"])
ERRORS = Counter("tally_projector_errors_total", "Errors a projector loop caught and retried after")
WEBHOOK_ERRORS = Counter("tally_webhook_sender_errors_total", "Errors the webhook sender caught and went on after",
                         ["stage"])
WEBHOOK_LEASES = Counter("tally_webhook_lease_changes_total", "Sender lease taken, lost or released", ["change"])
WEBHOOK_IN_FLIGHT = Gauge("tally_webhook_attempts_in_flight", "Webhook attempts in progress")
RETAINED = Counter("tally_retention_removed_total", "Entries retention removed, per structure", ["structure"])
RETENTION_ERRORS = Counter("tally_retention_errors_total", "Retention rounds that failed (tried again next round)",
                           ["structure"])
WORKER_ERRORS = Counter("tally_worker_errors_total",
                        "Errors a supervised worker loop caught and retried after (projector, sender, archiver, …)",
                        ["worker"])
WORKER_RESTARTS = Counter("tally_worker_restarts_total", "Long-lived workers started again after failing", ["worker"])
