"""`python -m chains.hyperliquid.localnet --port N [--seed-demo] [--move-marks-ms 1000]`: serve
until killed. Prints one line `local hyperliquid info listening on URL` once ready.

`--weight-limit` and `--window-seconds` set the per-client weight limit (default the venue's
1,200 per 60 s); `--move-marks-ms` walks every mark price that often.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading

from chains.hyperliquid.localnet.demo import move_marks, seed_demo_world
from chains.hyperliquid.localnet.server import LocalHyperliquid
from chains.hyperliquid.localnet.world import World


def _walk(world: World, every_ms: int, stop: threading.Event) -> None:
    rng = random.Random(11)
    while not stop.wait(every_ms / 1000):
        move_marks(world, rng)


def main(argv: list[str] | None = None) -> int:
    """May raise: nothing."""
    parser = argparse.ArgumentParser(prog="python -m chains.hyperliquid.localnet")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18960)
    parser.add_argument("--seed-demo", action="store_true", help="create alice's and bob's books")
    parser.add_argument("--move-marks-ms", type=int, default=0, help="walk the marks every N ms")
    parser.add_argument("--weight-limit", type=int, default=1200)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    world = World()
    if args.seed_demo:
        seed_demo_world(world)
    venue = LocalHyperliquid(
        world,
        host=args.host,
        port=args.port,
        weight_limit=args.weight_limit,
        window_seconds=args.window_seconds,
        start=False,
    )
    stop = threading.Event()
    if args.move_marks_ms > 0:
        threading.Thread(target=_walk, args=(world, args.move_marks_ms, stop), daemon=True).start()
    print(f"local hyperliquid info listening on {venue.url}", flush=True)
    try:
        venue.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        venue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
