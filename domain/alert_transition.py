"""An alert transition's shape (a Struct: kept out of domain/watch.py so that its functions compile, see setup.py)."""

from datetime import datetime

import msgspec

from domain.settings import AlertState


class AlertTransition(msgspec.Struct, frozen=True, kw_only=True):
    """One change of a wallet's alert state, caused by the event at `position`."""

    wallet_id: str
    metric: str
    old: AlertState
    new: AlertState
    value: str
    threshold: str | None
    position: str
    at: datetime

    @property
    def name(self) -> str:
        prefix = f"wallet.{self.metric}"
        if self.new == "in_alarm":
            return f"{prefix}.dropped"
        if self.old == "in_alarm":
            return f"{prefix}.recovered"
        return f"{prefix}.{self.new}"

    @property
    def key(self) -> str:
        return f"{self.wallet_id}:{self.metric}:{self.position}"
