"""Benchmark (issue 12, E5): activity-driven refresh against a full sweep, per block.

One anvil with the demo world, N wallets holding USDC (written into the token's storage, as
E2 does), one user per wallet, `--shards` shards (`[service] publish_shards`), the queue's
schema in the bench database. Every chain request of the code under test goes through a
counting HTTP proxy in front of anvil (its own thread and event loop): HTTP requests and the
JSON-RPC calls in them (a batch's every call), by method. Every shard is polled once first and
the follower's cursor set. Then, for each activity level (a share of the wallets receiving a
transfer per block; 1 % the issue's case), two phases of `--blocks` blocks each; in every
block that share of the wallets (drawn at random) receives USDC in one real `mint_many`
transaction (one block, a real `Transfer` log each; at most 500 wallets a block, the helper's
batch), then:

- **activity**: a real follower run (`follow_chain`: `eth_getLogs` since its cursor, the
  touched linked wallets' shards deferred as `poll_shard` jobs on the real queue), then the
  deferred shards polled as a worker would (`polling.poll_shard`);
- **sweep**: a real sweeper run (`sweep_chain(force=True)`: a `poll_shard` job deferred for
  every shard holding a wallet), then every deferred shard polled the same way.

The deferred jobs are then deleted (the bench stands in for the worker; a job still queued
would refuse the next block's defer). Counted per block: the proxy's HTTP requests and
JSON-RPC calls, the code's own meters (the follower's `requests`, `poll_runs.request_count`)
beside them, shards polled, rows added to the observation tables (`balances`, `positions`,
`venue_reads`, `chain_heads`, `poll_runs`, `prices`, by `count(*)`) and seconds (the
follower's or sweeper's run and the polls, the proxy hop included). Per phase,
from `pg_stat_user_tables` (read after the phase's connections have closed, so every
backend's counters are flushed): rows inserted and updated in xmargin's tables (partitions
summed per table) and rows inserted in the queue's. Then the least-squares lines of the
activity path's requests and rows per block against active wallets, of requests (less the
follower's), rows and seconds against shards polled over every block of both ways (the cost
is linear in shards polled), and the shards touched against `S·(1 − (1 − 1/S)^k)`. Asserts
nothing about time.

Run: .venv/bin/python bench/scale/activity_vs_sweep.py [--wallets 20000] [--shards 16]
         [--levels 0.0025,0.01,0.025] [--blocks 10]
Uses `XMARGIN_DATABASE_URL`'s server when set (a database of its own, dropped at the end),
else an embedded Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aiohttp import web
from procrastinate import App

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_world import bench_database
from kill_mid_shard import query
from queue_ceiling import least_squares, machine
from wallet_scaling import TOKEN, wallet, write_balances
from worker_scaling import CHAIN, seed_users
from worker_scaling import write_config as scale_config

from aggregator.config import LoadedConfig, load_config
from aggregator.polling.shards import poll_shard
from aggregator.specs import chain_spec
from aggregator.store.database import Database
from aggregator.work.app import build_app
from aggregator.work.follow import follow_chain
from aggregator.work.sweep import sweep_chain
from chains.base import ChainAdapter
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mint_many
from chains.registry import build_adapter
from tests.fault_rpc_proxy import RpcProxy

OBSERVATION_TABLES = ("balances", "positions", "venue_reads", "chain_heads", "poll_runs", "prices")
OBSERVATION_ROWS = "SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in OBSERVATION_TABLES)
POLL_REQUESTS = "SELECT coalesce(sum(request_count), 0) FROM poll_runs"
TABLE_WRITES = "SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables"
OTHER_CLIENTS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
)
PARTITION = re.compile(r"^(.*)_(p\d{6,8}|default)$")
MINT_BATCH = 500  # mint_many's holders per transaction: more would span blocks


class CountingProxy(RpcProxy):
    """The fault tests' forwarding proxy, counting the JSON-RPC calls of each request."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.calls = 0
        self.methods: Counter[str] = Counter()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp keeps it: the base class reads it again
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        for call in payload if isinstance(payload, list) else [payload]:
            self.calls += 1
            self.methods[str(call.get("method")) if isinstance(call, dict) else "?"] += 1
        return await super()._handle(request)

    def reading(self) -> tuple[int, int, Counter[str]]:
        return self.requests, self.calls, Counter(self.methods)


class ProxyThread:
    """A CountingProxy served from a thread with its own event loop (off the bench's loop)."""

    def __init__(self, upstream: str) -> None:
        self.proxy = CountingProxy(upstream)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(30)
        return self.proxy

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.aclose(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


@dataclass
class Block:
    requests: int  # HTTP requests at the proxy
    calls: int  # JSON-RPC calls at the proxy
    metered: int  # the code's own count (follower meter + poll_runs.request_count)
    follower: int  # HTTP requests of the follower run (its meter; 0 for the sweep)
    follower_seconds: float  # the follower's or the sweeper's run, before the polls
    shards: int  # shards polled
    rows: int  # rows added to the observation tables
    seconds: float
    methods: Counter[str] = field(default_factory=Counter)


@dataclass
class Phase:
    way: str
    active: int
    blocks: list[Block]
    xmargin_inserted: int = 0  # pg_stat, whole phase
    xmargin_updated: int = 0
    queue_inserted: int = 0
    by_table: Counter[str] = field(default_factory=Counter)

    def mean(self, name: str) -> float:
        return statistics.mean(float(getattr(b, name)) for b in self.blocks)

    def per_block(self, count: int) -> float:
        return count / len(self.blocks)


@dataclass
class Bench:
    url: str
    anvil_url: str
    world: EvmDeployment
    wallets: Sequence[str]
    config: LoadedConfig
    adapter: ChainAdapter
    proxy: CountingProxy
    rng: random.Random


def _scalar(url: str, sql: str) -> int:
    return int(str(query(url, sql)[0][0]))


def table_writes(url: str) -> dict[str, tuple[int, int]]:
    """(inserted, updated) rows per table since the server started, partitions summed."""
    totals: dict[str, tuple[int, int]] = {}
    for name, inserted, updated in query(url, TABLE_WRITES):
        match = PARTITION.match(str(name))
        table = match.group(1) if match else str(name)
        ins, upd = totals.get(table, (0, 0))
        totals[table] = (ins + int(str(inserted)), upd + int(str(updated)))
    return totals


def settle(url: str, within_seconds: float = 30.0) -> None:
    """Wait until no other client is connected to the bench database: a backend flushes its
    table counters when it exits, so pg_stat_user_tables then counts all of their writes."""
    deadline = time.monotonic() + within_seconds
    while _scalar(url, OTHER_CLIENTS):
        if time.monotonic() > deadline:
            raise RuntimeError("bench database: clients still connected")
        time.sleep(0.05)


@asynccontextmanager
async def connections(url: str, config: LoadedConfig) -> AsyncIterator[tuple[Database, App]]:
    """The store and the queue, closed (and their counters flushed) at the end."""
    database = Database(url)
    app = build_app(url, config, max_connections=2)
    try:
        async with app.open_async():
            yield database, app
    finally:
        await database.dispose()
        settle(url)


async def poll_all(bench: Bench, database: Database, shards: list[int]) -> None:
    count = bench.config.service.publish_shards
    for index in shards:
        result = await poll_shard(database, bench.adapter, CHAIN, index, count)
        if not result.ok:
            raise RuntimeError(result.describe())


async def transfer_block(bench: Bench, active: int) -> None:
    """One block in which `active` random wallets receive USDC (one `mint_many` transaction)."""
    picks = bench.rng.sample(range(len(bench.wallets)), active)
    await mint_many(
        bench.anvil_url,
        bench.world,
        TOKEN,
        [bench.wallets[i] for i in picks],
        [1_000 + i for i in picks],
    )


async def phase(bench: Bench, way: str, active: int, blocks: int) -> Phase:
    url = bench.url
    before = table_writes(url)
    result = Phase(way=way, active=active, blocks=[])
    async with connections(url, bench.config) as (database, app):
        for _ in range(blocks):
            await transfer_block(bench, active)
            rows, polled = _scalar(url, OBSERVATION_ROWS), _scalar(url, POLL_REQUESTS)
            requests, calls, methods = bench.proxy.reading()
            started = time.perf_counter()
            follower = 0
            if way == "activity":
                report = await follow_chain(app, database, bench.config, CHAIN)
                if report.error is not None or report.skipped:
                    raise RuntimeError(report.describe())
                follower, shards = report.requests, report.shards
            else:
                swept = await sweep_chain(app, database, bench.config, CHAIN, force=True)
                if not swept.due or swept.still_queued:
                    raise RuntimeError(swept.describe())
                shards = sorted(swept.deferred)
            deferred = time.perf_counter() - started
            await poll_all(bench, database, shards)
            seconds = time.perf_counter() - started
            now_requests, now_calls, now_methods = bench.proxy.reading()
            metered = follower + _scalar(url, POLL_REQUESTS) - polled
            result.blocks.append(
                Block(
                    requests=now_requests - requests,
                    calls=now_calls - calls,
                    metered=metered,
                    follower=follower,
                    follower_seconds=deferred,
                    shards=len(shards),
                    rows=_scalar(url, OBSERVATION_ROWS) - rows,
                    seconds=seconds,
                    methods=now_methods - methods,
                )
            )
            await app.connector.execute_query_async("DELETE FROM procrastinate_jobs")
    after = table_writes(url)
    for table, (ins, upd) in after.items():
        was_ins, was_upd = before.get(table, (0, 0))
        if table.startswith("procrastinate"):
            result.queue_inserted += ins - was_ins
        else:
            result.xmargin_inserted += ins - was_ins
            result.xmargin_updated += upd - was_upd
            if ins - was_ins or upd - was_upd:
                result.by_table[table] += ins - was_ins + upd - was_upd
    return result


async def catch_up(bench: Bench) -> None:
    """Bring the follower's cursor to the head (the sweep phase's blocks), nothing counted."""
    async with connections(bench.url, bench.config) as (database, app):
        report = await follow_chain(app, database, bench.config, CHAIN)
        if report.error is not None:
            raise RuntimeError(report.describe())
        await app.connector.execute_query_async("DELETE FROM procrastinate_jobs")


async def run(args: argparse.Namespace) -> None:
    async with bench_database() as (url, label), AnvilNode(chain_id=31337) as anvil:
        world = await deploy_demo_world(anvil.url)
        token = world.tokens[TOKEN].address
        assert token is not None
        wallets = [wallet(i) for i in range(args.wallets)]
        await write_balances(anvil.url, token, wallets, 0)
        seed_users(url, wallets)
        with tempfile.TemporaryDirectory() as tmp, ProxyThread(anvil.url) as proxy:
            path = scale_config(Path(tmp), proxy.url)
            with path.open("a", encoding="utf-8") as extra:
                extra.write(f"\n[service]\npublish_shards = {args.shards}\n")
            config = load_config(path)
            count = config.service.publish_shards
            every = sorted({(i + 1) % count for i in range(args.wallets)})  # user ids 1..N
            print(
                f"E5: {args.wallets} wallets, {count} shards, {machine(url)} ({label}),"
                f" {args.blocks} blocks per level and way"
            )
            adapter = build_adapter(chain_spec(config, CHAIN))
            bench = Bench(url, anvil.url, world, wallets, config, adapter, proxy, random.Random(12))
            try:
                requests, calls, _ = proxy.reading()
                started = time.perf_counter()
                async with connections(url, config) as (database, app):
                    await poll_all(bench, database, every)
                    seconds = time.perf_counter() - started
                    await follow_chain(app, database, config, CHAIN)  # sets the cursor
                first_requests, first_calls, _ = proxy.reading()
                print(
                    f"  first poll of every shard: {first_requests - requests} HTTP requests"
                    f" ({first_calls - calls} JSON-RPC calls), {_scalar(url, OBSERVATION_ROWS)}"
                    f" observation rows, {seconds:.2f} s"
                )
                levels: list[tuple[Phase, Phase]] = []
                for share in args.levels:
                    active = min(MINT_BATCH, max(1, round(args.wallets * share)))
                    await catch_up(bench)
                    activity = await phase(bench, "activity", active, args.blocks)
                    sweep = await phase(bench, "sweep", active, args.blocks)
                    levels.append((activity, sweep))
                report(levels, args.wallets, count)
            finally:
                await adapter.aclose()


def _methods(phase: Phase) -> str:
    total: Counter[str] = Counter()
    for block in phase.blocks:
        total.update(block.methods)
    return ", ".join(f"{m} {n / len(phase.blocks):.1f}" for m, n in total.most_common())


def report(levels: list[tuple[Phase, Phase]], wallets: int, shards: int) -> None:
    print(
        f"  {'way':<8} {'active/block':>14} {'shards':>7} {'HTTP req':>9} {'calls':>7}"
        f" {'(meter)':>8} {'obs rows':>9} {'s/block':>8}"
        f"   pg_stat per block: xmargin ins + upd, queue ins"
    )
    for pair in levels:
        for p in pair:
            print(
                f"  {p.way:<8} {p.active:>6} ({p.active / wallets:6.2%}) {p.mean('shards'):>7.1f}"
                f" {p.mean('requests'):>9.1f} {p.mean('calls'):>7.1f} {p.mean('metered'):>8.1f}"
                f" {p.mean('rows'):>9.1f} {p.mean('seconds'):>8.3f}"
                f"   {p.per_block(p.xmargin_inserted):.1f} + {p.per_block(p.xmargin_updated):.1f},"
                f" {p.per_block(p.queue_inserted):.1f}"
            )
        activity, sweep = pair
        print(
            f"  {'':<8} sweep / activity: {sweep.mean('requests') / activity.mean('requests'):.1f}x"
            f" requests, {sweep.mean('rows') / max(activity.mean('rows'), 1.0):.1f}x rows,"
            f" {sweep.mean('seconds') / activity.mean('seconds'):.1f}x seconds;"
            f" follower {activity.mean('follower'):.1f} requests,"
            f" {activity.mean('follower_seconds'):.3f} s/block (sweeper's defer"
            f" {sweep.mean('follower_seconds'):.3f} s)"
        )
    for pair in levels[:1]:
        for p in pair:
            tables = ", ".join(
                f"{t} {n / len(p.blocks):.1f}" for t, n in sorted(p.by_table.items())
            )
            print(f"  {p.way} at {p.active}/block, rows written per table per block: {tables}")
            print(f"  {p.way} at {p.active}/block, JSON-RPC calls per block: {_methods(p)}")
    xs = [float(activity.active) for activity, _ in levels]
    if len(set(xs)) > 1:
        b, a = least_squares(xs, [activity.mean("requests") for activity, _ in levels])
        d, c = least_squares(xs, [activity.mean("rows") for activity, _ in levels])
        print(f"  fit, activity: HTTP requests/block = {a:.1f} + {b:.4f} x active wallets")
        print(f"  fit, activity: observation rows/block = {c:.1f} + {d:.3f} x active wallets")
    blocks = [(b, p.way) for pair in levels for p in pair for b in p.blocks]
    polled = [float(b.shards) for b, _ in blocks]
    if len(set(polled)) > 1:  # the cost is linear in shards polled, both ways
        b, a = least_squares(polled, [float(b.requests - b.follower) for b, _ in blocks])
        d, c = least_squares(polled, [float(b.rows) for b, _ in blocks])
        f, e = least_squares(polled, [b.seconds for b, _ in blocks])
        print(
            f"  fit, every block of both ways: HTTP requests/block = follower's + {a:.2f}"
            f" + {b:.3f} x shards polled; observation rows/block = {c:.1f} + {d:.2f} x shards"
            f" polled;"
            f" s/block = {e:.3f} + {f:.4f} x shards polled"
        )
    for activity, _ in levels:
        k = activity.active
        expected = shards * (1 - (1 - 1 / shards) ** k)
        print(
            f"  touched shards at k = {k}: {activity.mean('shards'):.1f} measured,"
            f" S(1 - (1 - 1/S)^k) = {expected:.1f}"
        )
    sweeps = [sweep for _, sweep in levels]
    print(
        f"  full sweep per block: {statistics.mean(s.mean('requests') for s in sweeps):.1f}"
        f" HTTP requests, {statistics.mean(s.mean('rows') for s in sweeps):.1f} observation"
        f" rows, {statistics.mean(s.mean('seconds') for s in sweeps):.3f} s (any activity)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wallets", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument(
        "--levels",
        default="0.0025,0.01,0.025",
        help=f"shares of wallets active per block (at most {MINT_BATCH} wallets a block)",
    )
    parser.add_argument("--blocks", type=int, default=10, help="blocks per level and way")
    args = parser.parse_args()
    args.levels = [float(x) for x in args.levels.split(",") if x.strip()]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
