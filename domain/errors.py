"""The one error hierarchy of tally: each error carries the data the API needs to explain it."""

from typing import Any


class TallyError(Exception):
    """Base of every error the domain or the store raises on purpose."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFound(TallyError):
    """The resource does not exist for this tenant and environment."""


class ValidationFailed(TallyError):
    """The request is malformed or breaks a rule on its values."""


class InvalidOperation(TallyError):
    """The request is well formed but not allowed in the current state."""


class AlreadyExists(TallyError):
    """An idempotency key or id was used before with a different request."""


class VersionConflict(TallyError):
    """The aggregate moved while a command was being decided; retrying may succeed."""


class AccountBusy(TallyError):
    """Commands on the account raced other API processes until the command's deadline passed; retrying may succeed."""


class AccountQuarantined(TallyError):
    """An entry of the account cannot be folded: it is set aside until an operator retries or drops that entry."""


class Unauthenticated(TallyError):
    """No API key, or one that is not known."""


class StoreUnavailable(TallyError):
    """The event store could not be reached or refused to answer."""


# Transport and access: refused before a request reaches a handler's logic.
class Forbidden(TallyError):
    """A known credential that may not do this (a tenant key on an operator route, or no operator key configured)."""


class BodyTooLarge(TallyError):
    """The request body is larger than the route's limit."""


class RequestTimedOut(TallyError):
    """The request body did not arrive within its deadline."""
