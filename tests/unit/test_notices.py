"""Typed notices: every alert transition and new transaction has its kind, encodes to the very bytes the untyped
payloads wrote before (the webhook body is unchanged), and the notices already in a stream decode to their kind."""

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import get_args

import msgspec
import pytest

from domain.codec import decode_notice, encode_notice
from domain.identity import AccountRef
from domain.notices import (
    AnyNotice,
    BalanceAlert,
    CreditBalanceRecovered,
    OngoingBalanceDropped,
    TransactionCreated,
    alert_notice,
    transaction_notice,
)
from domain.settings import AlertState
from domain.state import LedgerEntry
from domain.watch import AlertTransition

REF = AccountRef("t1", "live", "c1")
AT = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
STATES: tuple[AlertState, ...] = ("ok", "info", "warning", "in_alarm")
# Written by the projector before notices were typed (projector/batch.py's TransactionPayload and AlertPayload).
STORED_TRANSACTION = (
    b'{"event_type":"wallet.transaction.created","tenant_id":"t1","environment_id":"live","customer_id":"c1",'
    b'"wallet_id":"w1","transaction_id":"tx1","type":"debit","reason":"MANUAL_BALANCE_DEBIT","credits":"2.5",'
    b'"credit_balance_after":"7.5","position":"1700000000000-1","at":"2024-01-02T03:04:05Z"}'
)
STORED_ALERT = (
    b'{"event_type":"wallet.ongoing_balance.dropped","tenant_id":"t1","environment_id":"live","customer_id":"c1",'
    b'"wallet_id":"w1","metric":"ongoing_balance","old_state":"warning","new_state":"in_alarm","balance":"-1.25",'
    b'"threshold":null,"position":"1700000000000-1","at":"2024-01-02T03:04:05Z"}'
)


class LegacyAlert(msgspec.Struct, frozen=True, kw_only=True):
    """The untyped alert payload as it was declared before (field for field, in order)."""

    event_type: str
    tenant_id: str
    environment_id: str
    customer_id: str
    wallet_id: str
    metric: str
    old_state: str
    new_state: str
    balance: str
    threshold: str | None
    position: str
    at: str


def test_a_stored_transaction_notice_decodes_to_its_kind_and_encodes_back_to_the_same_bytes() -> None:
    notice = decode_notice(STORED_TRANSACTION)
    assert isinstance(notice, TransactionCreated)
    assert (notice.event_type, notice.tenant_id, notice.transaction_id, notice.credits) == (
        "wallet.transaction.created", "t1", "tx1", "2.5")
    assert encode_notice(notice) == STORED_TRANSACTION


def test_a_stored_alert_notice_decodes_to_its_kind_and_encodes_back_to_the_same_bytes() -> None:
    notice = decode_notice(STORED_ALERT)
    assert isinstance(notice, OngoingBalanceDropped)
    assert (notice.event_type, notice.old_state, notice.new_state, notice.threshold) == (
        "wallet.ongoing_balance.dropped", "warning", "in_alarm", None)
    assert encode_notice(notice) == STORED_ALERT


@pytest.mark.parametrize(("metric", "old", "new"), [
    (metric, old, new) for metric in ("ongoing_balance", "credit_balance")
    for old, new in itertools.permutations(STATES, 2)
])
def test_every_alert_transition_has_a_kind_that_writes_what_the_untyped_payload_wrote(
    metric: str, old: AlertState, new: AlertState,
) -> None:
    transition = AlertTransition(wallet_id="w1", metric=metric, old=old, new=new, value="3", threshold="5",
                                 position="9-0", at=AT)
    notice = alert_notice(REF, transition)
    assert isinstance(notice, BalanceAlert) and notice.event_type == transition.name
    legacy = LegacyAlert(event_type=transition.name, tenant_id="t1", environment_id="live", customer_id="c1",
                         wallet_id="w1", metric=metric, old_state=old, new_state=new, balance="3", threshold="5",
                         position="9-0", at="2024-01-02T03:04:05Z")
    assert encode_notice(notice) == msgspec.json.encode(legacy)
    assert decode_notice(encode_notice(notice)) == notice


def test_a_transaction_notice_carries_its_ledger_entry() -> None:
    entry = LedgerEntry(id="tx1", event_id="ev1", seq=1, type="debit", reason="MANUAL_BALANCE_DEBIT",
                        credits=Decimal("2.50"), credit_balance_before=Decimal(10), credit_balance_after=Decimal("7.5"),
                        at=AT)
    notice = transaction_notice(REF, "w1", entry, "1700000000000-1")
    assert encode_notice(notice) == STORED_TRANSACTION


def test_every_kind_has_its_own_tag() -> None:
    tags = [kind.__struct_config__.tag for kind in get_args(AnyNotice)]
    assert len(tags) == len(set(tags)) == 15  # 10 alert kinds, 2 of transactions, 3 of wallets
    assert CreditBalanceRecovered.__struct_config__.tag == "wallet.credit_balance.recovered"


def test_a_notice_of_no_known_kind_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="event_type"):
        decode_notice(STORED_ALERT.replace(b"wallet.ongoing_balance.dropped", b"wallet.ongoing_balance.gone"))
