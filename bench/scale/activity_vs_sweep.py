"""Benchmark (issue 12, E5): activity-driven refresh against a full sweep, per block.

One anvil with the demo world, N wallets holding USDC (written into the token's storage, as
E2 does), one user per wallet, `[service] publish_shards` shards, the queue's schema in the
bench database. Every wallet's shard is polled once first. Then, for each activity level (a
share of the wallets active per block, 1 % the issue's case), `--blocks` times:

1. one block in which that share of the wallets receives USDC: a real `mint_many`
   transaction, so every one of them has a real `Transfer` log;
2. the **activity path**: a real follower run (`follow_chain`: `eth_getLogs` since its
   cursor, the touched linked wallets' shards deferred as `poll_shard` jobs on the real
   queue), then those shards polled as a worker would (`polling.poll_shard`); the deferred
   jobs are then removed so the next block's refresh is not refused as still queued;
3. one more (empty) block, then the **full sweep**: every shard polled.

Counted both ways, per block: JSON-RPC requests (the follower's own meter, and each poll's
`poll_runs.request_count`: HTTP requests, batches counted once), rows written into the
observation tables (`balances`, `chain_heads`, `poll_runs`, `prices` row counts before and
after) and seconds. Printed per level, with the least-squares line of activity-path requests
and rows per block against active wallets (the sweep's cost does not depend on activity).
Asserts nothing about time.

Run: .venv/bin/python bench/scale/activity_vs_sweep.py [--wallets 10000] [--shards 16]
         [--levels 0.0025,0.01,0.04] [--blocks 3]
Uses `XMARGIN_DATABASE_URL`'s server when set (a database of its own, dropped at the end),
else an embedded Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_world import bench_database
from kill_mid_shard import query
from queue_ceiling import least_squares, machine
from wallet_scaling import TOKEN, wallet, write_balances
from worker_scaling import CHAIN, seed_users
from worker_scaling import write_config as scale_config

from aggregator.config import load_config
from aggregator.polling.shards import poll_shard
from aggregator.specs import chain_spec
from aggregator.store.database import Database
from aggregator.work.app import build_app
from aggregator.work.follow import follow_chain
from chains.base import ChainAdapter
from chains.evm.devnet import AnvilNode, deploy_demo_world, mine, mint_many
from chains.registry import build_adapter

OBSERVATION_ROWS = (
    "SELECT (SELECT count(*) FROM balances) + (SELECT count(*) FROM chain_heads)"
    " + (SELECT count(*) FROM poll_runs) + (SELECT count(*) FROM prices)"
)
POLL_REQUESTS = "SELECT coalesce(sum(request_count), 0) FROM poll_runs"


@dataclass
class Block:
    requests: int
    rows: int
    seconds: float


def _rows(url: str) -> int:
    return int(str(query(url, OBSERVATION_ROWS)[0][0]))


def _poll_requests(url: str) -> int:
    return int(str(query(url, POLL_REQUESTS)[0][0]))


async def _poll_shards(
    url: str, database: Database, adapter: ChainAdapter, shards: list[int], count: int
) -> Block:
    rows, requests = _rows(url), _poll_requests(url)
    started = time.perf_counter()
    for index in shards:
        result = await poll_shard(database, adapter, CHAIN, index, count)
        if not result.ok:
            raise RuntimeError(result.describe())
    seconds = time.perf_counter() - started
    return Block(_poll_requests(url) - requests, _rows(url) - rows, seconds)


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(12)
    async with bench_database() as (url, label), AnvilNode(chain_id=31337) as anvil:
        world = await deploy_demo_world(anvil.url)
        token = world.tokens[TOKEN].address
        wallets = [wallet(i) for i in range(args.wallets)]
        await write_balances(anvil.url, token, wallets, 0)
        seed_users(url, wallets)
        with tempfile.TemporaryDirectory() as tmp:
            path = scale_config(Path(tmp), anvil.url)
            with path.open("a", encoding="utf-8") as extra:
                extra.write(f"\n[service]\npublish_shards = {args.shards}\n")
            config = load_config(path)
            count = config.service.publish_shards
            every = sorted({(i + 1) % count for i in range(args.wallets)})  # user ids 1..N
            print(
                f"E5: {args.wallets} wallets, {count} shards, {machine(url)} ({label}),"
                f" {args.blocks} blocks per level"
            )
            database = Database(url)
            adapter = build_adapter(chain_spec(config, CHAIN))
            app = build_app(url, config, max_connections=2)
            try:
                async with app.open_async():
                    first = await _poll_shards(url, database, adapter, every, count)
                    print(
                        f"  first sweep: {first.requests} requests, {first.rows} rows,"
                        f" {first.seconds:.2f} s"
                    )
                    await follow_chain(app, database, config, CHAIN)  # sets the cursor
                    levels: list[tuple[int, Block, Block, Block]] = []
                    for share in args.levels:
                        active = max(1, round(args.wallets * share))
                        follower, refresh, sweep = [], [], []
                        for _ in range(args.blocks):
                            picks = rng.sample(range(args.wallets), active)
                            await mint_many(
                                anvil.url,
                                world,
                                TOKEN,
                                [wallets[i] for i in picks],
                                [1_000 + i for i in picks],
                            )
                            started = time.perf_counter()
                            report = await follow_chain(app, database, config, CHAIN)
                            follow_seconds = time.perf_counter() - started
                            follower.append(Block(report.requests, 0, follow_seconds))
                            refresh.append(
                                await _poll_shards(url, database, adapter, report.shards, count)
                            )
                            await app.connector.execute_query_async(
                                "DELETE FROM procrastinate_jobs"
                            )
                            await mine(anvil.url, 1)  # the sweep reads a newer block
                            sweep.append(await _poll_shards(url, database, adapter, every, count))
                        levels.append((active, _mean(follower), _mean(refresh), _mean(sweep)))
                    _print(levels, args.wallets)
            finally:
                await adapter.aclose()
                await database.dispose()


def _mean(blocks: list[Block]) -> Block:
    return Block(
        round(statistics.mean(b.requests for b in blocks)),
        round(statistics.mean(b.rows for b in blocks)),
        statistics.mean(b.seconds for b in blocks),
    )


def _print(levels: list[tuple[int, Block, Block, Block]], wallets: int) -> None:
    print(
        f"  {'active/block':>12} {'activity: requests':>19} {'rows':>6} {'s':>6}"
        f"   {'sweep: requests':>16} {'rows':>7} {'s':>6}   {'ratio requests':>14} {'rows':>6}"
    )
    for active, follower, refresh, sweep in levels:
        requests = follower.requests + refresh.requests
        seconds = follower.seconds + refresh.seconds
        print(
            f"  {active:>6} ({active / wallets:5.2%}) {requests:>8}"
            f" ({follower.requests} follower) {refresh.rows:>6} {seconds:6.2f}"
            f"   {sweep.requests:>16} {sweep.rows:>7} {sweep.seconds:6.2f}"
            f"   {sweep.requests / max(requests, 1):>13.1f}x"
            f" {sweep.rows / max(refresh.rows, 1):>5.1f}x"
        )
    xs = [float(active) for active, *_ in levels]
    if len(set(xs)) > 1:
        requests = [float(f.requests + r.requests) for _, f, r, _ in levels]
        rows = [float(r.rows) for _, _, r, _ in levels]
        b, a = least_squares(xs, requests)  # (slope, intercept)
        d, c = least_squares(xs, rows)
        print(f"  fit, activity path: requests/block = {a:.1f} + {b:.3f} x active wallets")
        print(f"  fit, activity path: rows/block = {c:.1f} + {d:.3f} x active wallets")
    sweeps = [s for *_, s in levels]
    print(
        f"  full sweep per block: {statistics.mean(s.requests for s in sweeps):.0f} requests,"
        f" {statistics.mean(s.rows for s in sweeps):.0f} rows (independent of activity)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wallets", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument(
        "--levels", default="0.0025,0.01,0.04", help="shares of wallets active per block"
    )
    parser.add_argument("--blocks", type=int, default=3, help="blocks per level")
    args = parser.parse_args()
    args.levels = [float(x) for x in args.levels.split(",") if x.strip()]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
