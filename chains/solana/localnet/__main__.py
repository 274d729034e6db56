"""`python -m chains.solana.localnet --port N [--seed-demo] [--slot-ms 400] [--ws [--ws-port M]]`:
serve until killed.

Prints one line `local solana rpc listening on URL` once ready, and with `--ws` a second line
`local solana pubsub listening on WS_URL`: Solana's RPC PubSub websocket (account and program
subscriptions), at `--ws-port` (default: the RPC port + 1, Solana's convention). With
`--slot-ms`, a slot is produced every that many milliseconds (so `finalized` keeps up) and,
with `--seed-demo`, the demo prices are re-published every 25 slots so they never go stale
(`set_demo_prices`: the Pyth accounts the feeds, Drift markets and MarginFi banks read, and the
Kamino reserves' own price).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from chains.solana.localnet.chain import LocalSolana
from chains.solana.localnet.demo import seed_demo_world, set_demo_prices

_PRICE_REFRESH_SLOTS = 25


def _tick(chain: LocalSolana, slot_ms: int, refresh_prices: bool, stop: threading.Event) -> None:
    produced = 0
    while not stop.wait(slot_ms / 1000):
        chain.advance_slots(1)
        produced += 1
        if refresh_prices and produced % _PRICE_REFRESH_SLOTS == 0:
            set_demo_prices(chain)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chains.solana.localnet")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--seed-demo", action="store_true", help="create the demo world")
    parser.add_argument("--slot-ms", type=int, default=0, help="produce a slot every N ms")
    parser.add_argument("--finalized-lag", type=int, default=4)
    parser.add_argument("--confirmed-lag", type=int, default=1)
    parser.add_argument("--ws", action="store_true", help="also serve the PubSub websocket")
    parser.add_argument("--ws-port", type=int, default=None, help="its port (default: port + 1)")
    parser.add_argument(
        "--genesis-unix-time",
        type=int,
        default=None,
        help="block time of slot 0 (default: now, so slot times track the wall clock)",
    )
    args = parser.parse_args(argv)
    chain = LocalSolana(
        host=args.host,
        port=args.port,
        finalized_lag=args.finalized_lag,
        confirmed_lag=args.confirmed_lag,
        start=False,
        pubsub_port=(
            (args.ws_port if args.ws_port is not None else args.port + 1) if args.ws else None
        ),
        genesis_unix_time=(
            # The ledger starts at slot 1000 (400 s after genesis at 400 ms a slot).
            int(time.time()) - 400 if args.genesis_unix_time is None else args.genesis_unix_time
        ),
    )
    if args.seed_demo:
        seed_demo_world(chain)
    stop = threading.Event()
    if args.slot_ms > 0:
        threading.Thread(
            target=_tick, args=(chain, args.slot_ms, args.seed_demo, stop), daemon=True
        ).start()
    print(f"local solana rpc listening on {chain.url}", flush=True)
    if chain.pubsub is not None:
        chain.pubsub.start()
        print(f"local solana pubsub listening on {chain.ws_url}", flush=True)
    try:
        chain.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        chain.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
