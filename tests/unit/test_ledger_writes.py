"""The fold yields ledger writes beside the account, which keeps live state only: its encoding does not grow with the
ledger, and paying a pending top-up rewrites that entry (same seq) instead of adding one."""

from decimal import Decimal

from domain.codec import encode_account
from domain.events import CreditsGranted, CreditsPaid
from domain.fold import advance_logged
from domain.state import LedgerWrite
from tests.unit.given import T0, after, created, debited, given, granted, ledger_of, wallet_of, written_until

D = Decimal


def test_the_encoded_account_does_not_grow_with_debits() -> None:
    account = given(created(), granted("a", "100000"))
    sizes = {}
    for n in range(1, 2001):
        account = given(debited(f"d{n}", "1"), account=account)
        if n in (10, 2000):
            sizes[n] = len(encode_account(account))
    assert sizes[2000] - sizes[10] <= 8, sizes
    assert len(ledger_of(account)) == 2001 and wallet_of(account).entries == 2001


def test_each_new_entry_takes_the_next_seq_of_its_wallet() -> None:
    account = given(created(), created("w2"), granted("a", "10"), granted("b", "5", wallet_id="w2"),
                    debited("d", "3"))
    seqs = [(w.wallet_id, w.entry.id, w.entry.seq, w.new) for w in written_until(account)]
    assert seqs == [("w1", "a", 0, True), ("w2", "b", 0, True), ("w1", "d", 1, True)]


def test_paying_a_pending_top_up_rewrites_its_entry_and_forgets_it() -> None:
    pending = CreditsGranted(id="ev-p", at=T0, wallet_id="w1", transaction_id="p", credits=D(50),
                             reason="PURCHASED_CREDIT_INVOICED", pending=True)
    account = given(created(), granted("a", "10"), pending)
    assert [e.id for e in wallet_of(account).pending_entries] == ["p"]
    paid, written = advance_logged(account, "9-0", CreditsPaid(id="ev-paid", at=after(minutes=1), wallet_id="w1",
                                                               transaction_id="p"))
    [write] = written
    assert write == LedgerWrite("w1", write.entry, new=False)
    assert (write.entry.id, write.entry.seq, write.entry.pending) == ("p", 1, False)
    assert wallet_of(paid).pending_entries == () and wallet_of(paid).entries == 2
    again, nothing = advance_logged(paid, "10-0", CreditsPaid(id="ev-paid-2", at=after(minutes=2), wallet_id="w1",
                                                              transaction_id="p"))
    assert nothing == () and wallet_of(again).entries == 2
