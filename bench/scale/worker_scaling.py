"""Benchmark (issue 12, E1): 1 → 2 → 4 worker processes draining (chain, shard) poll jobs.

One anvil with the demo world; `--wallets` wallets (one user each, on chain `a`) hold USDC,
written into the DevToken `balanceOf` slots with `anvil_setStorageAt` (as E2,
`wallet_scaling.py`). For each process count: a block is mined (so every shard's cursor can
move forward), `--processes` real `xmargin worker` processes are started and wait until they
heart-beat, then one `xmargin.poll_shard` job per shard (args chain, index, count; lock and
queueing lock the shard's) is deferred in one batch, and the time from the defer to an empty
queue is taken. Per count: wallet-balances read per second (balance rows the polls stored),
shards per second, HTTP requests (`poll_runs.request_count`), failed jobs, and the machine's
busy share (the 2 cores saturate); then the least-squares lines of both rates against
processes. Asserts nothing about time.

Run: .venv/bin/python bench/scale/worker_scaling.py [--wallets 40000] [--shards 40]
         [--processes 1,2,4] [--concurrency 1]
Uses `XMARGIN_DATABASE_URL`'s server when set (a database of its own, dropped at the end),
else an embedded Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
from procrastinate.types import JSONDict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_world import bench_database
from kill_mid_shard import Worker, query, until_workers
from queue_ceiling import cpu_ticks, least_squares, machine
from wallet_scaling import wallet, write_balances

from aggregator.config import load_config
from aggregator.store.database import libpq_url
from aggregator.work.app import build_app
from chains.evm.devnet import DEMO_ADDRESSES, AnvilNode, deploy_demo_world, mine

REPO = Path(__file__).resolve().parents[2]
CHAIN = "a"
POLL_SHARD = "xmargin.poll_shard"


def shard_lock(chain: str, index: int, count: int) -> str:
    """A (chain, shard) poll's lock: `aggregator.work.locks` names it when it is defined."""
    from aggregator.work import locks

    named = getattr(locks, "poll_shard_lock", None)
    if callable(named):
        return str(named(chain, index, count))
    return f"poll:{chain}:{index}/{count}"


def write_config(directory: Path, url: str) -> Path:
    text = f"""extends = "{REPO / "config" / "default.toml"}"

[chains.{CHAIN}]
family = "evm"
chain_id = 31337
rpc_urls = ["{url}"]
finality = "latest"
finality_seconds = 24
liquidation_latency_seconds = 60
max_staleness_seconds = 3600
timeout_seconds = 60

[assets.USDC]
family = "USD"
stable = true
volatility = "0.02"
init_weight = "0.8"
maint_weight = "0.9"
init_liability_weight = "1.2"
maint_liability_weight = "1.1"
price = {{ kind = "chainlink", chain = "{CHAIN}", address = "{DEMO_ADDRESSES["feed:USDC"]}" }}
max_price_age_seconds = 3600
deployments.{CHAIN} = {{ address = "{DEMO_ADDRESSES["USDC"]}", decimals = 6 }}

[work]
dispatch_cron = ""
reap_cron = ""
heartbeat_seconds = 0.5
stalled_seconds = 30
"""
    path = directory / "xmargin.toml"
    path.write_text(text, encoding="utf-8")
    return path


def seed_users(url: str, addresses: Sequence[str]) -> None:
    """One user per wallet on chain `a`, COPYed."""
    users, wallets = io.StringIO(), io.StringIO()
    for user, address in enumerate(addresses, 1):
        users.write(f"{user}\tscale-{user}\n")
        wallets.write(f"{user}\t{CHAIN}\t{address}\n")
    with psycopg.connect(libpq_url(url)) as conn:
        with conn.cursor() as cursor, cursor.copy("COPY users (id, name) FROM STDIN") as copy:
            copy.write(users.getvalue())
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY wallets (user_id, chain, address) FROM STDIN") as copy,
        ):
            copy.write(wallets.getvalue())
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def counts(url: str) -> dict[str, int]:
    rows = query(
        url,
        "SELECT (SELECT count(*) FROM balances), (SELECT count(*) FROM chain_heads),"
        " (SELECT coalesce(sum(request_count), 0) FROM poll_runs),"
        " (SELECT count(*) FROM poll_runs WHERE NOT ok),"
        " (SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed')",
    )
    balances, heads, requests, failed_polls, failed_jobs = (int(str(v)) for v in rows[0])
    return {
        "balances": balances,
        "heads": heads,
        "requests": requests,
        "failed polls": failed_polls,
        "failed jobs": failed_jobs,
    }


async def until_drained(url: str, within_seconds: float = 900) -> None:
    deadline = time.monotonic() + within_seconds
    while query(
        url,
        "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        " AND task_name = %s",
        (POLL_SHARD,),
    )[0][0]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the poll_shard jobs did not drain in {within_seconds} s")
        await asyncio.sleep(0.02)


async def run(args: argparse.Namespace) -> None:
    process_counts = [int(p) for p in args.processes.split(",") if p.strip()]
    async with bench_database() as (url, label), AnvilNode(chain_id=31337) as node:
        print(machine(url))
        print(
            f"database: {label}; anvil {node.url}; {args.wallets:,} wallets (one USDC line"
            f" each) in {args.shards} shards; {args.concurrency} job(s) at a time per process;"
            f" load {os.getloadavg()[0]:.2f}"
        )
        world = await deploy_demo_world(node.url)
        token = world.tokens["USDC"].address
        assert token is not None
        addresses = [wallet(i) for i in range(args.wallets)]
        await write_balances(node.url, token, addresses, 0)
        seed_users(url, addresses)
        with tempfile.TemporaryDirectory(prefix="xmargin-e1-") as directory:
            cwd = Path(directory)
            path = write_config(cwd, node.url)
            app = build_app(url, load_config(path), max_connections=2)
            rates: list[tuple[int, float, float]] = []
            async with app.open_async():
                for processes in process_counts:
                    await mine(node.url, 1)
                    before = counts(url)
                    workers = [
                        await Worker.start(path, url, cwd, args.concurrency)
                        for _ in range(processes)
                    ]
                    try:
                        await until_workers(url, processes)
                        jobs: list[JSONDict] = [
                            {"chain": CHAIN, "index": i, "count": args.shards}
                            for i in range(args.shards)
                        ]
                        busy, total = cpu_ticks()
                        started = time.monotonic()
                        for kwargs in jobs:
                            lock = shard_lock(CHAIN, int(str(kwargs["index"])), args.shards)
                            await app.configure_task(
                                POLL_SHARD, lock=lock, queueing_lock=lock
                            ).defer_async(**kwargs)
                        await until_drained(url)
                        elapsed = time.monotonic() - started
                        busy_after, total_after = cpu_ticks()
                    finally:
                        for worker in workers:
                            await worker.stop()
                    after = counts(url)
                    delta = {key: after[key] - before[key] for key in after}
                    lines = delta["balances"] / elapsed
                    shards = delta["heads"] / elapsed
                    rates.append((processes, lines, shards))
                    share = (busy_after - busy) / max(total_after - total, 1)
                    print(
                        f"{processes} worker process(es): {args.shards} shard jobs in"
                        f" {elapsed:.2f} s; {delta['balances']:,} wallet-balances stored"
                        f" ({lines:,.0f}/s), {delta['heads']} shard heads ({shards:.1f}"
                        f" shards/s), {delta['requests']} HTTP requests, failed polls"
                        f" {delta['failed polls']}, failed jobs {delta['failed jobs']};"
                        f" machine busy {share:.0%}; load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
                    if delta["heads"] < args.shards:
                        tail = "".join(line for w in workers for line in w.lines[-5:])
                        print(f"  (fewer shard heads than jobs; worker log tail: {tail[-800:]})")
    if len(rates) >= 2:
        xs = [float(p) for p, _, _ in rates]
        slope, intercept = least_squares(xs, [r for _, r, _ in rates])
        print(f"fit wallet-balances/s = {slope:,.0f} x processes + {intercept:,.0f}")
        slope, intercept = least_squares(xs, [s for _, _, s in rates])
        print(f"fit shards/s = {slope:.2f} x processes + {intercept:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--wallets", type=int, default=40_000)
    parser.add_argument("--shards", type=int, default=40)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at a time per worker")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
