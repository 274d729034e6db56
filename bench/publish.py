"""Benchmark: one publish pass over N users x 10 lines of stored observations on 3 chains.

Seeds a fresh migrated database (COPY) with N users, each with a wallet on three EVM chains
and 10 lines read at one head per chain (7 wallet balances of ETH, WETH and USDC, an Aave
WETH deposit and USDC borrow, a USDC deposit), and the chains' oracle prices. Then runs
`aggregator.publish.publish` three times and prints, per pass: users/s, seconds end to end and
the database's share of the shards' time (reading and writing; the rest is valuation in
Python), rows written (latest statuses, history, the market) and the growth of the status
tables on disk, peak RSS (this process plus the worker processes), and the shards' seconds by
phase (read, value and render, write) summed over the workers. Passes:

1. first pass: every user is new, so every status is written (and recorded in history);
2. the same inputs again, a few seconds later: the headline barely moves (only data age), so
   almost nothing is written;
3. after a price move of ETH by 2%: every user holding ETH moves, so they are written.

The first pass is the 100,000-user target of issue 10 (<= 10 s, <= 1.5 GB). Asserts nothing
about time.

Run: .venv/bin/python bench/publish.py [--users 100000] [--shards 16] [--workers 2]
         [--sizes 10000,30000]
Uses `XMARGIN_DATABASE_URL`'s server when set (a database of its own, dropped at the end),
else an embedded Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_world import bench_database

from aggregator.config import LoadedConfig, load_config
from aggregator.publish import publish, workers
from aggregator.store.database import Database, libpq_url
from chains.evm.devnet import DEMO_ADDRESSES

REPO = Path(__file__).resolve().parents[1]
CHAINS = ("a", "b", "c")
FEEDS = {"ETH": DEMO_ADDRESSES["feed:ETH"], "USDC": DEMO_ADDRESSES["feed:USDC"]}


def write_config(directory: Path, shards: int, workers: int) -> Path:
    lines = [
        f'extends = "{REPO / "config" / "default.toml"}"',
        "",
        "[service]",
        f"publish_shards = {shards}",
        f"publish_workers = {workers}",
        "",
    ]
    for index, key in enumerate(CHAINS):
        lines += [
            f"[chains.{key}]",
            'family = "evm"',
            f"chain_id = {31337 + index}",
            'rpc_urls = ["http://127.0.0.1:9"]',
            'finality = "latest-2"',
            "finality_seconds = 24",
            "liquidation_latency_seconds = 60",
            "max_staleness_seconds = 3600",
            "",
            f"[[chains.{key}.aave_pools]]",
            'name = "devnet"',
            f'pool = "{DEMO_ADDRESSES["pool"]}"',
            f'data_provider = "{DEMO_ADDRESSES["pool"]}"',
            "",
        ]
    assets = {
        "ETH": ("ETH", "native", 18, "ETH", False),
        "WETH": ("ETH", DEMO_ADDRESSES["WETH"], 18, "ETH", False),
        "USDC": ("USD", DEMO_ADDRESSES["USDC"], 6, "USDC", True),
    }
    for symbol, (family, address, decimals, feed, stable) in assets.items():
        lines += [
            f"[assets.{symbol}]",
            f'family = "{family}"',
            f"stable = {'true' if stable else 'false'}",
            'volatility = "0.02"' if stable else 'volatility = "0.8"',
            'init_weight = "0.8"',
            'maint_weight = "0.9"',
            'init_liability_weight = "1.2"',
            'maint_liability_weight = "1.1"',
            f'price = {{ kind = "chainlink", chain = "a", address = "{FEEDS[feed]}" }}',
            "max_price_age_seconds = 3600",
        ]
        for key in CHAINS:
            lines.append(f'deployments.{key} = {{ address = "{address}", decimals = {decimals} }}')
        lines.append("")
    path = directory / "xmargin.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: list[str]) -> None:
    with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for row in rows:
            buffer.write(row)
            buffer.write("\n")
        copy.write(buffer.getvalue())


def seed(url: str, users: int, now: datetime) -> int:
    """Write the users, wallets, heads, lines and prices; return the number of lines."""
    block_time = now - timedelta(seconds=5)
    lines = 0
    with psycopg.connect(libpq_url(url)) as conn:
        _copy(conn, "users", "id, name", [f"{u}\tuser-{u}" for u in range(1, users + 1)])
        wallets = [
            f"{u}\t{key}\t0x{u:08x}{i:032x}"
            for u in range(1, users + 1)
            for i, key in enumerate(CHAINS)
        ]
        _copy(conn, "wallets", "user_id, chain, address", wallets)
        for head_id, key in enumerate(CHAINS, 1):
            conn.execute(
                "INSERT INTO poll_runs (id, chain, started_at, finished_at, duration_ms, height,"
                " ok) VALUES (%s, %s, %s, %s, 100, 1000, true)",
                (head_id, key, block_time, block_time),
            )
            conn.execute(
                "INSERT INTO chain_heads (id, poll_run_id, chain, height, hash, block_timestamp,"
                " finality, observed_at) VALUES (%s, %s, %s, 1000, %s, %s, 'latest', %s)",
                (head_id, head_id, key, f"0x{head_id:064x}", block_time, block_time),
            )
        balances: list[str] = []
        positions: list[str] = []
        for u in range(1, users + 1):
            for i, key in enumerate(CHAINS):
                account = f"0x{u:08x}{i:032x}"
                head = i + 1
                eth = 10**18 * (1 + u % 7) + u
                usdc = 10**6 * (100 + u % 5000)
                balances.append(f"{u}\t{head}\t{key}\t{account}\tETH\t{eth}\t18")
                balances.append(f"{u}\t{head}\t{key}\t{account}\tUSDC\t{usdc}\t6")
                if key == "a":
                    balances.append(f"{u}\t{head}\t{key}\t{account}\tWETH\t{eth // 2}\t18")
                    weth = 10**18 * (2 + u % 3)
                    debt = -(10**6) * (1000 + (u * 37) % 6000)
                    positions.append(
                        f"{u}\t{head}\t{key}\t{account}\tdevnet\tWETH\tdeposit\t{weth}\t18"
                    )
                    positions.append(
                        f"{u}\t{head}\t{key}\t{account}\tdevnet\tUSDC\tborrow\t{debt}\t6"
                    )
                if key == "b":
                    positions.append(
                        f"{u}\t{head}\t{key}\t{account}\tdevnet\tUSDC\tdeposit\t{usdc}\t6"
                    )
        _copy(
            conn,
            "balances",
            "user_id, chain_head_id, chain, account, asset, amount_raw, decimals",
            balances,
        )
        _copy(
            conn,
            "positions",
            "user_id, chain_head_id, chain, account, venue, asset, kind, amount_raw, decimals",
            positions,
        )
        lines = len(balances) + len(positions)
        set_prices(conn, Decimal(3000), block_time)
        conn.commit()
    # Settled as a database that has run a while: autovacuum would otherwise start on the
    # fresh million rows in the middle of the first pass, and the checkpoint of the seed's
    # writes (hundreds of MB of dirty pages) would fall into it.
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
    return lines


def set_prices(conn: psycopg.Connection, eth: Decimal, publish_time: datetime) -> None:
    """The prices read at chain a's head: ETH (and WETH, same feed) and USDC."""
    conn.execute("DELETE FROM prices")
    for asset, price in (("ETH", eth), ("WETH", eth), ("USDC", Decimal(1))):
        conn.execute(
            "INSERT INTO prices (chain_head_id, chain, asset, source, price, conf, publish_time,"
            " valid, observed_at) VALUES (1, 'a', %s, 'chainlink', %s, 0, %s, true, %s)",
            (asset, price, publish_time, publish_time),
        )


_BYTES = """
    SELECT pg_total_relation_size('margin_status') + pg_total_relation_size('valuation_markets')
         + coalesce((SELECT sum(pg_total_relation_size(relid))  -- partitioned (0010)
                     FROM pg_partition_tree('margin_status_history')),
                    pg_total_relation_size('margin_status_history'))
"""


def _bytes(url: str) -> int:
    """On-disk size of the status tables (with indexes and TOAST)."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        size = conn.execute(_BYTES).fetchone()
    assert size is not None
    return int(size[0])


def _peak_rss_mb() -> float:
    """Peak resident memory of this process plus each worker process's own peak (VmHWM): an
    upper bound of the pass's peak in all."""
    total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for pid in worker_pids():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def worker_pids() -> list[int]:
    pool = workers._POOL
    if pool is None:
        return []
    return list(pool[1]._processes)  # the pool's live worker processes


def _warm(count: int) -> float:
    """Start the worker processes before timing (a daemon starts them once)."""
    if count < 2:
        return 0.0
    started = time.perf_counter()
    pool = workers.shard_pool(count)
    list(pool.map(abs, range(count * 4)))
    return time.perf_counter() - started


async def run_pass(label: str, url: str, config: LoadedConfig, as_of: datetime) -> dict[str, float]:
    bytes_before = _bytes(url)
    database = Database(url)
    try:
        started = time.perf_counter()
        report = await publish(database, config, as_of=as_of)
        seconds = time.perf_counter() - started
    finally:
        await database.dispose()
    bytes_after = _bytes(url)
    db_seconds = sum(shard.database_seconds for shard in report.shards)
    shard_seconds = sum(shard.seconds for shard in report.shards)
    phases = {
        phase: sum(getattr(shard, f"{phase}_seconds") for shard in report.shards)
        for phase in ("read", "value", "write")
    }
    figures = {
        "users": report.users,
        "seconds": seconds,
        "users_per_second": report.users / seconds if seconds else 0.0,
        "database_share": db_seconds / shard_seconds if shard_seconds else 0.0,
        "written": report.written,
        "changed": report.changed,
        # latest rows, history rows, and the pass's market row when anything was written
        "rows": report.written + report.changed + (1 if report.written else 0),
        "bytes": bytes_after - bytes_before,
        "peak_rss_mb": _peak_rss_mb(),
        **{f"{phase}_seconds": value for phase, value in phases.items()},
    }
    print(
        f"  {label:<34} {report.users:>7} users {seconds:7.2f} s"
        f" {figures['users_per_second']:>9,.0f} users/s"
        f"  db {figures['database_share']:4.0%} of shard time  written {report.written:>7}"
        f" (history {report.changed:>7})  rows {figures['rows']:>7}"
        f"  bytes {figures['bytes'] / 1e6:7.1f} MB  peak RSS {figures['peak_rss_mb']:6.0f} MB"
    )
    print(
        "    shard seconds, summed over the workers: "
        + ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in phases.items())
    )
    return figures


async def bench(users: int, shards: int, workers: int) -> list[dict[str, float]]:
    async with bench_database() as (url, label):
        with tempfile.TemporaryDirectory() as tmp:
            config = load_config(write_config(Path(tmp), shards, workers))
            now = datetime.now(UTC)
            started = time.perf_counter()
            lines = seed(url, users, now)
            print(
                f"{users} users, {lines} lines over {len(CHAINS)} chains, {shards} shards,"
                f" {workers} worker processes"
                f" ({label}); seeded in {time.perf_counter() - started:.1f} s"
            )
            spawn = _warm(workers)
            if spawn:
                print(f"  worker processes started in {spawn:.1f} s (once per daemon)")
            results = [await run_pass("pass 1 (all new)", url, config, now)]
            results.append(
                await run_pass("pass 2 (no input change)", url, config, now + timedelta(seconds=5))
            )
            with psycopg.connect(libpq_url(url)) as conn:
                set_prices(conn, Decimal(3060), now)
                conn.commit()
            results.append(
                await run_pass("pass 3 (ETH +2%)", url, config, now + timedelta(seconds=10))
            )
            return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="[service] publish_workers")
    parser.add_argument(
        "--sizes", default="", help="comma-separated smaller user counts to run first"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()] + [args.users]
    print(f"Python {sys.version.split()[0]}; publish pass benchmark")
    everything = {}
    for size in sizes:
        everything[size] = asyncio.run(bench(size, args.shards, args.workers))
    if len(sizes) > 1:
        print("growth (pass 1): seconds per 1,000 users")
        for size in sizes:
            first = everything[size][0]
            print(f"  {size:>7} users: {first['seconds'] / size * 1000:.3f} s")
    if args.json:
        print(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
