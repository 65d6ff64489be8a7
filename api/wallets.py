"""Wallet routes under /v1: create, read, update, terminate, top up, debit, transactions (the real-time balance
is a hot route: api/hot.py)."""

from decimal import Decimal
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api import translate
from api.accounts import Accounts, Outcome
from api.auth import Caller
from api.balances import BREAKDOWN, EXPAND_DOC, EXPAND_PATTERN, expansions
from api.body import json_body, request_doc, response_doc
from api.bounded import PathId
from api.ids import new_id
from api.present import transaction_response, wallet_response
from api.responses import json
from api.schemas import (
    CreateWalletRequest,
    DebitRequest,
    TopUpRequest,
    TopUpResponse,
    UpdateWalletRequest,
    WalletResponse,
)
from api.service import Service
from domain.balance import view_balance
from domain.commands import CreateWallet, DebitWallet, FreezeWallet, PayTopUp, TerminateWallet, UnfreezeWallet
from domain.decide import decide, find_wallet
from domain.errors import AlreadyExists, NotFound
from domain.identity import AccountRef
from domain.state import Account
from store.eventstore import Dedup
from store.ledger import find_entry
from store.wallet_list import WalletList

router = APIRouter(prefix="/v1", tags=["Wallets"])


Expand = Annotated[str | None, Query(pattern=EXPAND_PATTERN, description=EXPAND_DOC)]


def _wallet_json(service: Accounts, account: Account, wallet_id: str, expand: str | None) -> Response:
    breakdown = BREAKDOWN in expansions(expand)
    wallet = find_wallet(account, wallet_id)
    return json(wallet_response(wallet, view_balance(account, wallet, service.clock()), breakdown))


@router.post("/wallets", openapi_extra=request_doc(CreateWalletRequest), responses=response_doc(200, WalletResponse))
async def create_wallet(
    caller: Caller, service: Service, body: Annotated[CreateWalletRequest, Depends(json_body(CreateWalletRequest))],
    expand: Expand = None,
) -> Response:
    command = translate.create_wallet(body, caller, actor=caller.tenant_id)
    ref, shown = await service.wallet_owner(caller, body.customer_id or "", body.external_customer_id or "")
    command = msgspec.structs.replace(command, customer_id=shown)
    await refuse_first(service, ref, command)
    await service.store.index_wallet(command.wallet_id, ref)
    outcome = await service.execute(ref, command)
    created = find_wallet(outcome.account, command.wallet_id)
    await WalletList(service.store.redis, service.store.keys).add(ref, created.id, created.created_at)
    return _wallet_json(service, outcome.account, command.wallet_id, expand)


async def refuse_first(service: Accounts, ref: AccountRef, command: CreateWallet) -> None:
    """Decide on the account as it is, appending nothing: a creation that will be refused raises here, before
    the wallet's index is written (the index must exist before the wallet's first event can be read)."""
    read = await service.store.read_account(ref)
    decide(read.account, command, service.clock())


@router.get("/wallets/{wallet_id}", responses=response_doc(200, WalletResponse))
async def get_wallet(wallet_id: PathId, caller: Caller, service: Service, expand: Expand = None) -> Response:
    ref = await service.locate_wallet(wallet_id, caller)
    read = await service.store.read_account(ref)
    return _wallet_json(service, read.account, wallet_id, expand)


@router.put("/wallets/{wallet_id}", openapi_extra=request_doc(UpdateWalletRequest),
            responses=response_doc(200, WalletResponse))
async def update_wallet(
    wallet_id: PathId, caller: Caller, service: Service,
    body: Annotated[UpdateWalletRequest, Depends(json_body(UpdateWalletRequest))], expand: Expand = None,
) -> Response:
    ref = await service.locate_wallet(wallet_id, caller)
    outcome = await service.execute(ref, translate.update_wallet(wallet_id, body, actor=caller.tenant_id))
    return _wallet_json(service, outcome.account, wallet_id, expand)


@router.post("/wallets/{wallet_id}/terminate", responses=response_doc(200, WalletResponse))
async def terminate_wallet(wallet_id: PathId, caller: Caller, service: Service, expand: Expand = None) -> Response:
    ref = await service.locate_wallet(wallet_id, caller)
    command = TerminateWallet(event_id=new_id("evt"), actor=caller.tenant_id, wallet_id=wallet_id,
                              transaction_id=new_id("wtx"))
    outcome = await service.execute(ref, command)
    return _wallet_json(service, outcome.account, wallet_id, expand)


@router.post("/wallets/{wallet_id}/freeze", responses=response_doc(200, WalletResponse))
async def freeze_wallet(wallet_id: PathId, caller: Caller, service: Service, expand: Expand = None) -> Response:
    ref = await service.locate_wallet(wallet_id, caller)
    outcome = await service.execute(ref, FreezeWallet(event_id=new_id("evt"), actor=caller.tenant_id,
                                                      wallet_id=wallet_id))
    return _wallet_json(service, outcome.account, wallet_id, expand)


@router.post("/wallets/{wallet_id}/unfreeze", responses=response_doc(200, WalletResponse))
async def unfreeze_wallet(wallet_id: PathId, caller: Caller, service: Service, expand: Expand = None) -> Response:
    ref = await service.locate_wallet(wallet_id, caller)
    outcome = await service.execute(ref, UnfreezeWallet(event_id=new_id("evt"), actor=caller.tenant_id,
                                                        wallet_id=wallet_id))
    return _wallet_json(service, outcome.account, wallet_id, expand)


async def _ledger_reply(service: Accounts, ref: AccountRef, outcome: Outcome, wallet_id: str,
                        transaction_id: str) -> Response:
    """The wallet and the transaction: the one the command just wrote, or else found by id (a retried key)."""
    account = outcome.account
    entry = next((w.entry for w in reversed(outcome.ledger)
                  if w.wallet_id == wallet_id and w.entry.id == transaction_id), None)
    if entry is None:
        read, entry = await find_entry(service.store, ref, wallet_id, transaction_id)
        account = read.account
    if entry is None:
        raise NotFound(f"transaction {transaction_id} not found")
    wallet = find_wallet(account, wallet_id)
    now = service.clock()
    return json(TopUpResponse(wallet=wallet_response(wallet, view_balance(account, wallet, now)),
                              wallet_transaction=transaction_response(wallet, entry, now)))


def _idempotency(
    scope: str, wallet_id: str, key: str | None, body: msgspec.Struct, transaction_id: str
) -> Dedup | None:
    if not key:
        return None
    return Dedup(scope=scope, key=key, value=f"{translate.fingerprint(body)}:{transaction_id}", wallet_id=wallet_id)


async def _replay_or_conflict(
    service: Accounts, ref: AccountRef, outcome: Outcome, wallet_id: str, dedup: Dedup, seen: str
) -> Response:
    """A retried idempotency key: the same body gets the original transaction, another body a 409."""
    fingerprint, _, rest = seen.partition(":")
    transaction_id = rest.split("|")[0]
    if fingerprint != dedup.value.partition(":")[0]:
        raise AlreadyExists("idempotency key was used with a different request",
                            {"idempotency_key": dedup.key, "transaction_id": transaction_id})
    return await _ledger_reply(service, ref, outcome, wallet_id, transaction_id)


@router.post("/wallets/{wallet_id}/top-up", openapi_extra=request_doc(TopUpRequest),
             responses=response_doc(200, TopUpResponse))
async def top_up_wallet(
    wallet_id: PathId, caller: Caller, service: Service,
    body: Annotated[TopUpRequest, Depends(json_body(TopUpRequest))],
) -> Response:
    ref = await service.locate_wallet(wallet_id, caller)
    command = translate.top_up(wallet_id, body, actor=caller.tenant_id)
    dedup = _idempotency("topup", wallet_id, body.idempotency_key, body, command.transaction_id)
    outcome = await service.execute(ref, command, dedup)
    if dedup and outcome.appended and outcome.appended.status == "duplicate":
        return await _replay_or_conflict(service, ref, outcome, wallet_id, dedup, outcome.appended.seen)
    return await _ledger_reply(service, ref, outcome, wallet_id, command.transaction_id)


@router.post("/wallets/{wallet_id}/debit", openapi_extra=request_doc(DebitRequest),
             responses=response_doc(200, TopUpResponse))
async def debit_wallet(
    wallet_id: PathId, caller: Caller, service: Service,
    body: Annotated[DebitRequest, Depends(json_body(DebitRequest))],
) -> Response:
    """A manual debit (tally's own endpoint): consumes lots in lot order, never beyond the available credits."""
    ref = await service.locate_wallet(wallet_id, caller)
    command = DebitWallet(
        event_id=new_id("evt"), actor=caller.tenant_id, wallet_id=wallet_id, transaction_id=new_id("wtx"),
        credits=translate.decimal_or("credits", body.credits, Decimal(0), "positive"),
        reason=body.transaction_reason, idempotency_key=body.idempotency_key,
        description=body.description or "", metadata=body.metadata or {},
    )
    dedup = _idempotency("debit", wallet_id, body.idempotency_key, body, command.transaction_id)
    outcome = await service.execute(ref, command, dedup)
    if dedup and outcome.appended and outcome.appended.status == "duplicate":
        return await _replay_or_conflict(service, ref, outcome, wallet_id, dedup, outcome.appended.seen)
    return await _ledger_reply(service, ref, outcome, wallet_id, command.transaction_id)


@router.post("/wallets/{wallet_id}/transactions/{transaction_id}/pay", responses=response_doc(200, TopUpResponse))
async def pay_top_up(wallet_id: PathId, transaction_id: PathId, caller: Caller, service: Service) -> Response:
    """Record the payment of a pending (invoiced) top-up: its credits become available."""
    ref = await service.locate_wallet(wallet_id, caller)
    command = PayTopUp(event_id=new_id("evt"), actor=caller.tenant_id, wallet_id=wallet_id,
                       transaction_id=transaction_id)
    outcome = await service.execute(ref, command)
    return await _ledger_reply(service, ref, outcome, wallet_id, transaction_id)


@router.get("/customers/{customer_id}/wallets", responses=response_doc(200, list[WalletResponse]))
async def customer_wallets(customer_id: PathId, caller: Caller, service: Service, expand: Expand = None) -> Response:
    breakdown = BREAKDOWN in expansions(expand)
    ref = await service.customers.account_of(caller.tenant_id, caller.environment_id, customer_id)
    read = await service.store.read_account(ref)
    now = service.clock()
    wallets = sorted(read.account.wallets.values(), key=lambda w: (w.created_at, w.id))
    return json([wallet_response(w, view_balance(read.account, w, now), breakdown) for w in wallets])
