"""A local Hyperliquid info server (a `World` of markets and accounts), for tests and the demo.

In-process: `with LocalHyperliquid() as venue: ...` serves on a background thread at `venue.url`.
As a subprocess: `python -m chains.hyperliquid.localnet --port 18960 --seed-demo`.
"""

from chains.hyperliquid.localnet.demo import (
    demo_address,
    demo_spec,
    move_marks,
    seed_demo_world,
    seed_synthetic_users,
)
from chains.hyperliquid.localnet.server import LocalHyperliquid
from chains.hyperliquid.localnet.world import World

__all__ = [
    "LocalHyperliquid",
    "World",
    "demo_address",
    "demo_spec",
    "move_marks",
    "seed_demo_world",
    "seed_synthetic_users",
]
