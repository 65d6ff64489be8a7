"""A wallet's real-time balance: exact (snapshot + unfolded tail) or from the snapshot alone, with its expansions."""

from datetime import datetime

from fastapi.responses import Response

from api.accounts import Accounts, quarantined
from api.auth import Principal
from api.present import balance_response
from api.responses import encode, json_body
from domain.balance import view_balance, view_span
from domain.decide import find_wallet
from domain.errors import ValidationFailed

BREAKDOWN = "credits_available_breakdown"
EXPANSIONS = (BREAKDOWN,)
EXPAND_PATTERN = f"^(({'|'.join(EXPANSIONS)})(,({'|'.join(EXPANSIONS)}))*)?$"
EXPAND_DOC = f"comma-separated, each one of: {', '.join(EXPANSIONS)}; any other value is a 400"


def expansions(expand: str | None) -> set[str]:
    """The `expand` values asked for; an unknown one is a 400 (as Flexprice answers), an empty one asks nothing."""
    names = set(expand.split(",")) if expand else set()
    unknown = names - set(EXPANSIONS)
    if unknown:
        raise ValidationFailed(f"unknown expand value; allowed: {', '.join(EXPANSIONS)}",
                               {"expand": sorted(unknown), "allowed": list(EXPANSIONS)})
    return names


async def read_balance(
    wallet_id: str, caller: Principal, service: Accounts, expand: str | None, from_cache: bool
) -> Response:
    breakdown = BREAKDOWN in expansions(expand)
    ref = await service.locate_wallet(wallet_id, caller)
    read = await service.store.read_account(ref, cached=from_cache)
    if from_cache and wallet_id not in read.account.wallets:
        read = await service.store.read_account(ref)
        from_cache = False
    if read.quarantined is not None:  # its snapshot, as it stands: the tail holds an entry that cannot fold
        if wallet_id not in read.account.wallets:
            raise quarantined(ref)
        from_cache = True
    wallet = find_wallet(read.account, wallet_id)
    now = service.clock()

    def encoded() -> tuple[bytes, datetime | None, datetime | None]:
        view = view_balance(read.account, wallet, now)
        response = balance_response(wallet, view, breakdown, from_cache, read.snapshot_position, read.folded_at,
                                    read.account.position)
        return (encode(response), *view_span(wallet, now))

    return json_body(service.balances.body((ref, wallet_id, breakdown, from_cache), read, now, encoded))
