"""A clock tests move by hand (EventStore's `clock`), and usage events stamped by it."""

from datetime import UTC, datetime

from domain.events import UsageRecorded
from domain.identity import AccountRef


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def usage_at(event_id: str, at: float, ref: AccountRef) -> UsageRecorded:
    when = datetime.fromtimestamp(at, UTC)
    return UsageRecorded(id=event_id, at=when, event_name="api_call", external_customer_id=ref.customer_id,
                         timestamp=when, properties={"tokens": 1})
