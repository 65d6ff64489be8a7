"""Redis stream ids ("ms-seq") as comparable positions."""

ORIGIN = "0-0"


def parse(position: str) -> tuple[int, int]:
    ms, _, seq = position.partition("-")
    return int(ms), int(seq or 0)


def is_after(position: str, other: str) -> bool:
    return parse(position) > parse(other)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
