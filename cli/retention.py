"""`tally retention`: what each growing structure holds and what holds it back; `--apply` runs one round now."""

import asyncio
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.common import connect, load_settings
from cli.components import retention_settings
from cli.settings import Settings
from projector.retention import PartitionRetention, Retained
from store.retention import Retention

retention_app = typer.Typer()
wide = Console(soft_wrap=True, highlight=False)  # lines an operator greps: never wrapped


@retention_app.command()
def retention(
    apply: Annotated[bool, typer.Option("--apply", help="run one retention round on every partition now")] = False,
) -> None:
    """Per partition: feed, alerts stream (and emitted keys), operations stream, with the reader that bounds each;
    then webhook deliveries. The projector and the webhook sender run the same rounds in the background."""
    settings = load_settings()
    rows, deliveries = asyncio.run(_survey(settings, apply))
    for row in rows:
        wide.print(row)
    wide.print(f"webhook deliveries: {deliveries[0]} finished (kept "
                    f"{settings.webhook_delivery_retention_seconds} s after they finish), {deliveries[1]} queued"
                    + (f", {deliveries[2]} removed now" if apply else ""))


async def _survey(settings: Settings, apply: bool) -> tuple[list[str], tuple[int, int, int]]:
    redis, keys = connect(settings)
    store = Retention(redis, keys)
    rounds = PartitionRetention(store, retention_settings(settings))
    now_ms = int(time.time() * 1000)
    rows = []
    try:
        for partition in range(keys.partitions):
            done = await rounds.run(partition) if apply else None
            rows.append(await _row(store, partition, now_ms, settings, done))
        removed = 0
        if apply:
            removed = await store.prune_deliveries(now_ms, settings.webhook_delivery_retention_seconds * 1000,
                                                   settings.retention_batch)
        finished: Any = await redis.zcard(keys.webhook_finished())
        queued: Any = await redis.zcard(keys.webhook_due())
        return rows, (int(finished), int(queued), removed)
    finally:
        await redis.aclose()


async def _row(store: Retention, partition: int, now_ms: int, settings: Settings, done: Retained | None) -> str:
    keys, redis = store.keys, store.redis
    feed_bound = await store.feed_bound(partition)
    alerts_bound = await store.alerts_bound(partition, now_ms, settings.alerts_retention_seconds * 1000)
    sizes: Any = [await redis.xlen(keys.feed(partition)), await redis.xlen(keys.notices(partition)),
                  await redis.zcard(keys.notices_emitted(partition)), await redis.xlen(keys.operations(partition))]
    removed = "" if done is None else f" removed: feed={done.feed} alerts={done.alerts} operations={done.operations}"
    return (f"partition {partition}: feed={sizes[0]} below {feed_bound.position} ({feed_bound.held_by}); "
            f"alerts={sizes[1]} emitted_keys={sizes[2]} below {alerts_bound.position} ({alerts_bound.held_by}); "
            f"operations={sizes[3]}{removed}")
