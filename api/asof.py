"""A wallet's balance as of a past instant or log position: the customer's log folded from zero up to there.

The answer is what a real-time read would have answered at that moment: every entry of the customer's log at or
before the moment, folded from zero, with the balance viewed at the moment's instant (expiries, period state).
It depends only on the log and the request, so once the moment has passed it never changes.
"""

from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import Annotated

import msgspec
from fastapi import APIRouter, Query
from fastapi.responses import Response
from redis.exceptions import RedisError

from api.accounts import Accounts, quarantined
from api.auth import Caller, Principal
from api.balances import BREAKDOWN, EXPAND_DOC, EXPAND_PATTERN, expansions
from api.body import response_doc
from api.bounded import PathId, QueryPosition, QueryTimestamp
from api.present import balance_response
from api.responses import json
from api.schemas import WalletBalanceResponse
from api.service import Service
from api.translate import time_field
from domain.balance import view_balance
from domain.decide import find_wallet
from domain.errors import ValidationFailed
from domain.fold import fold
from domain.identity import AccountRef
from domain.state import EMPTY_ACCOUNT, Account
from store.eventstore import EventStore
from store.positions import parse

router = APIRouter(prefix="/v1", tags=["Wallets"])
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
LAST_SEQUENCE = 2**64 - 1  # the largest sequence part of a stream id: (ms, LAST_SEQUENCE) ends millisecond ms


class Moment(msgspec.Struct, frozen=True):
    """What an as-of read reflects: the log's entries at or before `last` (ms, seq), viewed at `instant`."""

    last: tuple[int, int]
    instant: datetime


def moment(at: str | None, position: str | None, now: datetime) -> Moment:
    """`at` (every entry appended in or before its millisecond) or `position` (every entry up to it, viewed at
    its millisecond): exactly one, and not after `now` (a moment still to come has no settled answer)."""
    instant = time_field("at", at)
    if (instant is None) == (not position):
        raise ValidationFailed("give exactly one of at and position", {"at": at, "position": position})
    now_ms = (now - EPOCH) // MILLISECOND
    if instant is not None:
        if instant > now:
            raise ValidationFailed("at is after now: an as-of balance is of a moment that has passed", {"at": at})
        return Moment(((instant - EPOCH) // MILLISECOND, LAST_SEQUENCE), instant)
    last = parse(position or "")
    if last[0] > now_ms:
        raise ValidationFailed("position is after now: an as-of balance is of a moment that has passed",
                               {"position": position})
    return Moment(last, EPOCH + last[0] * MILLISECOND)


async def account_as_of(store: EventStore, ref: AccountRef, last: tuple[int, int]) -> Account:
    """The account folded from zero up to `last`. The projector's snapshot is that fold up to its own position, so
    a moment at or after it starts there and folds only the entries since; an earlier moment folds from zero."""
    snapshot = await store.read_account(ref, cached=True)
    usable = snapshot.quarantined is None and parse(snapshot.account.position) <= last
    start = snapshot.account if usable else EMPTY_ACCOUNT
    try:
        log = await store.read_log(ref, after=start.position)
        return fold(start, takewhile(lambda entry: parse(entry[0]) <= last, log))
    except RedisError:
        raise
    except Exception as exc:  # an entry that cannot be decoded or folded: the projector quarantines the account
        raise quarantined(ref) from exc


@router.get("/wallets/{wallet_id}/balance/as-of", responses=response_doc(200, WalletBalanceResponse, errors=(409,)))
async def wallet_balance_as_of(
    wallet_id: PathId, caller: Caller, service: Service,
    at: QueryTimestamp = None, position: QueryPosition = None,
    expand: Annotated[str | None, Query(pattern=EXPAND_PATTERN, description=EXPAND_DOC)] = None,
) -> Response:
    """The balance as a real-time read would have answered at `at` (or right after log position `position`;
    exactly one of them, not after now), folded from the customer's log; `read_position` is the last entry it
    reflects. A wallet that did not exist yet then is a 404."""
    return await read_balance_as_of(wallet_id, caller, service, expand, at, position)


async def read_balance_as_of(
    wallet_id: str, caller: Principal, service: Accounts, expand: str | None, at: str | None, position: str | None
) -> Response:
    breakdown = BREAKDOWN in expansions(expand)
    when = moment(at, position, service.clock())
    ref = await service.locate_wallet(wallet_id, caller)
    account = await account_as_of(service.store, ref, when.last)
    wallet = find_wallet(account, wallet_id)
    view = view_balance(account, wallet, when.instant)
    return json(balance_response(wallet, view, breakdown, False, account.position, "", account.position))
