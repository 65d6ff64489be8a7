"""The one fenced lease every worker holds (a projector partition, the webhook sender, an archive round).

Taking a lease nobody holds hands out a new fencing token (`holder#N`, from a counter beside the lease key); the
holder renews its own value; a write the holder makes afterwards carries that value and is refused by its Lua step
once the lease is someone else's. Giving it back deletes it only while it is still ours (lease.lua, release.lua).
"""

from typing import Any

from store.positions import text
from store.scripts import Script


class Lease:
    """`value` is the token held now (None: not held); `keep` takes or renews it, `release` gives it back."""

    def __init__(self, take_script: Script, release_script: Script, key: str, fence: str, holder: str,
                 ttl_ms: int) -> None:
        self.take_script = take_script
        self.release_script = release_script
        self.key = key
        self.fence = fence
        self.holder = holder
        self.ttl_ms = ttl_ms
        self.value: str | None = None

    async def keep(self) -> str | None:
        """Take the lease, or renew the one held; None (and nothing held) when another holder has it."""
        self.value = await take(self.take_script, self.key, self.fence, self.holder, self.ttl_ms, self.value)
        return self.value

    async def release(self) -> None:
        """Give the lease back (a no-op when it is not held, or not ours any more)."""
        held, self.value = self.value, None
        if held is not None:
            await give_back(self.release_script, self.key, held)

    def lost(self) -> None:
        """A fenced write was refused: the lease is someone else's now."""
        self.value = None


async def take(script: Script, key: str, fence: str, holder: str, ttl_ms: int, held: str | None) -> str | None:
    value: Any = await script(keys=[key, fence], args=[holder, ttl_ms, held or ""])
    return text(value) if value else None


async def give_back(script: Script, key: str, held: str) -> None:
    await script(keys=[key], args=[held])
