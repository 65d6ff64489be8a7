"""Encoders and decoders, built once: events, snapshots and ledger entries travel as MessagePack."""

import msgspec

from domain.events import AnyEvent
from domain.pricing import PriceVersion
from domain.state import Account, LedgerEntry

_event_encoder = msgspec.msgpack.Encoder(order="deterministic")
_event_decoder = msgspec.msgpack.Decoder(AnyEvent)
_account_encoder = msgspec.msgpack.Encoder(order="deterministic")
_account_decoder = msgspec.msgpack.Decoder(Account)
_prices_encoder = msgspec.msgpack.Encoder(order="deterministic")
_prices_decoder = msgspec.msgpack.Decoder(tuple[PriceVersion, ...])


def encode_event(event: AnyEvent) -> bytes:
    return _event_encoder.encode(event)


def decode_event(data: bytes) -> AnyEvent:
    event: AnyEvent = _event_decoder.decode(data)
    return event


def encode_account(account: Account) -> bytes:
    return _account_encoder.encode(account)


def decode_account(data: bytes) -> Account:
    return _account_decoder.decode(data)


_entry_encoder = msgspec.msgpack.Encoder(order="deterministic")
_entry_decoder = msgspec.msgpack.Decoder(LedgerEntry)


def encode_ledger_entry(entry: LedgerEntry) -> bytes:
    return _entry_encoder.encode(entry)


def decode_ledger_entry(data: bytes) -> LedgerEntry:
    return _entry_decoder.decode(data)


def encode_prices(prices: tuple[PriceVersion, ...]) -> bytes:
    return _prices_encoder.encode(prices)


def decode_prices(data: bytes) -> tuple[PriceVersion, ...]:
    prices: tuple[PriceVersion, ...] = _prices_decoder.decode(data)
    return prices


_price_encoder = msgspec.msgpack.Encoder(order="deterministic")
_price_decoder = msgspec.msgpack.Decoder(PriceVersion)


def encode_price(price: PriceVersion) -> bytes:
    return _price_encoder.encode(price)


def decode_price(data: bytes) -> PriceVersion:
    price: PriceVersion = _price_decoder.decode(data)
    return price
