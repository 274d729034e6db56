"""The stream hub's fan-out: each subscriber gets each version once, in order, and one that
falls behind is dropped without holding up the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aggregator.api.reads.status_reader import StatusReader
from aggregator.api.reads.stream_hub import StatusEvent, StatusHub
from aggregator.config import load_config
from aggregator.store.database import Database

DEVNET = Path(__file__).resolve().parents[3] / "config" / "devnet.toml"


def _hub(queue_size: int) -> StatusHub:
    database = Database("postgresql://nobody@127.0.0.1:1/none")  # never connected here
    reader = StatusReader(database, load_config(DEVNET))
    return StatusHub(database, reader, queue_size=queue_size)


async def test_events_reach_ready_subscribers_once_and_in_order() -> None:
    hub = _hub(queue_size=10)
    reader = hub.subscribe([1, 2])
    await hub.activate(reader, {1: 5, 2: 0})
    other = hub.subscribe([2])  # still loading its snapshot: not ready
    hub.deliver([StatusEvent(1, 5, b"old"), StatusEvent(1, 6, b"a"), StatusEvent(2, 1, b"b")])
    hub.deliver([StatusEvent(1, 6, b"a")])  # the same version again
    got = [reader.queue.get_nowait() for _ in range(reader.queue.qsize())]
    assert [(e.user_id, e.seq) for e in got if e] == [(1, 6), (2, 1)]
    assert other.queue.empty()
    assert hub.client_count == 2


async def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_keep_going() -> None:
    hub = _hub(queue_size=2)
    slow, fast = hub.subscribe([1]), hub.subscribe([1])
    await hub.activate(slow, {1: 0})
    await hub.activate(fast, {1: 0})
    for seq in range(1, 6):
        hub.deliver([StatusEvent(1, seq, b"x")])
        while not fast.queue.empty():  # the fast one reads as events come
            event = fast.queue.get_nowait()
            assert event is not None and event.seq == seq
    assert slow.dropped
    assert slow.queue.get_nowait() is None  # the only thing left: "send the final event"
    assert fast.last_seq[1] == 5 and not fast.dropped
    hub.unsubscribe(slow)
    assert hub.client_count == 1
    await asyncio.sleep(0)
