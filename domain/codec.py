"""Encoders and decoders, built once: events and snapshots travel as MessagePack."""

import msgspec

from domain.events import AnyEvent
from domain.state import Account

_event_encoder = msgspec.msgpack.Encoder()
_event_decoder = msgspec.msgpack.Decoder(AnyEvent)
_account_encoder = msgspec.msgpack.Encoder()
_account_decoder = msgspec.msgpack.Decoder(Account)


def encode_event(event: AnyEvent) -> bytes:
    return _event_encoder.encode(event)


def decode_event(data: bytes) -> AnyEvent:
    event: AnyEvent = _event_decoder.decode(data)
    return event


def encode_account(account: Account) -> bytes:
    return _account_encoder.encode(account)


def decode_account(data: bytes) -> Account:
    return _account_decoder.decode(data)
