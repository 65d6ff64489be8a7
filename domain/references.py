"""What a ledger entry refers to, as Flexprice shows it: `reference_type`/`reference_id` and the parent transaction.

Derived from the entry alone (nothing new is stored, so entries written by earlier versions show the same):
- a period settlement (its id starts with SETTLEMENT_PREFIX) refers to its invoice: INVOICE, the invoice id;
- an expiry (CREDIT_EXPIRED, id EXPIRY_PREFIX + the lot's id) has no reference; its parent is the expired lot's
  credit transaction;
- every other entry was written by a request (top-up, debit, auto top-up, termination, initial credits): REQUEST,
  the request's idempotency key, or the id of the event it was recorded as when it had none.
"""

from domain.state import LedgerEntry

EXPIRY_PREFIX = "exp_"
SETTLEMENT_PREFIX = "settle_"
ReferenceType = str


def reference(entry: LedgerEntry) -> tuple[ReferenceType | None, str | None]:
    """(reference_type, reference_id) of the entry; (None, None) when it refers to nothing."""
    if entry.id.startswith(SETTLEMENT_PREFIX) and "invoice_id" in entry.metadata:
        return "INVOICE", entry.metadata["invoice_id"]
    if entry.reason == "CREDIT_EXPIRED":
        return None, None
    return "REQUEST", entry.idempotency_key or entry.event_id


def parent_transaction(entry: LedgerEntry) -> str | None:
    """The transaction this one derives from: an expiry's expired lot (its credit transaction)."""
    if entry.reason == "CREDIT_EXPIRED" and entry.id.startswith(EXPIRY_PREFIX):
        return entry.id[len(EXPIRY_PREFIX):]
    return None
