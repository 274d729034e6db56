"""Benchmark (issue 12, E2): the EVM adapter's cost per wallet from 10k to 1M wallets.

One anvil with the demo world (`deploy_demo_world`: the DevToken ERC-20s, Multicall3 put in
place by `anvil_setCode`). Balances are created fast: each wallet's USDC balance is written
straight into the token's `balanceOf` mapping with `anvil_setStorageAt` (DevToken is Vyper:
the mapping sits at storage slot 6, `vyper -f layout`, and Vyper keys a HashMap entry at
keccak(pad32(slot) ++ pad32(key)), the slot first, unlike Solidity), and a sample of them is
checked with `balanceOf`. Sizes grow cumulatively (the 100k wallets include the 10k).

Per size: `EvmAdapter.snapshot` of the N wallets (one ERC-20 line each, at one block, what
`bench/evm_poll.py` times), `--runs` times: seconds, µs per wallet, wallets/s and HTTP
requests (the adapter's own count, `poll_runs.request_count`); then the snapshot stored with
`record_snapshot` as a poll stores it (one user per wallet, users COPYed beforehand): seconds,
rows written and bytes per wallet (growth of the observation tables with their indexes, and
the WAL the server wrote meanwhile). Last, the per-wallet cost ratio (largest / smallest
median µs per wallet; flat within 20 % means ≤ 1.2) and the least-squares line of seconds
against wallets. The machine's load (1-minute average) is printed beside each size: the box is
shared. Asserts nothing about time.

Run: .venv/bin/python bench/scale/wallet_scaling.py [--sizes 10000,100000,1000000] [--runs 3]
         [--batch 1000] [--no-store]
Uses `XMARGIN_DATABASE_URL`'s server when set (a database of its own, dropped at the end),
else an embedded Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from eth_utils.crypto import keccak

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_world import bench_database
from queue_ceiling import least_squares, machine

from aggregator.store.database import Database, libpq_url
from aggregator.store.observed.observations import record_snapshot
from chains.base import Address, ChainSnapshot, EndpointPolicy
from chains.evm.adapter import EvmAdapter
from chains.evm.address import to_checksum
from chains.evm.anvil import DevnetRpc
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine
from chains.evm.spec import EvmChainSpec

TOKEN = "USDC"
BALANCE_OF_SLOT = 6  # DevToken.vy's `balanceOf` (vyper -f layout)
SET_PER_REQUEST = 2000  # anvil_setStorageAt calls per JSON-RPC batch
SETS_IN_FLIGHT = 4
OBSERVATION_TABLES = ("poll_runs", "chain_heads", "balances", "prices")


def wallet(index: int) -> Address:
    return Address(to_checksum(keccak(b"xmargin-scale-%d" % index)[12:].hex()))


def amount_of(index: int) -> int:
    return 1_000_000 + index  # USDC base units, never zero


def balance_slot(holder: str, slot: int = BALANCE_OF_SLOT) -> str:
    """The storage key of `balanceOf[holder]` in a Vyper contract (slot first)."""
    key = keccak(slot.to_bytes(32, "big") + bytes(12) + bytes.fromhex(holder[2:]))
    return "0x" + key.hex()


async def write_balances(url: str, token: str, wallets: list[Address], first: int) -> None:
    """`wallets[i]` gets `amount_of(first + i)` of `token`, written into its storage."""
    step = SET_PER_REQUEST
    chunks = [wallets[start : start + step] for start in range(0, len(wallets), step)]
    limit = asyncio.Semaphore(SETS_IN_FLIGHT)

    async def write(offset: int, chunk: list[Address], rpc: DevnetRpc) -> None:
        async with limit:
            await rpc.batch(
                [
                    (
                        "anvil_setStorageAt",
                        [token, balance_slot(holder), f"0x{amount_of(first + offset + i):064x}"],
                    )
                    for i, holder in enumerate(chunk)
                ]
            )

    async with DevnetRpc(url) as rpc:
        await asyncio.gather(
            *(write(n * SET_PER_REQUEST, chunk, rpc) for n, chunk in enumerate(chunks))
        )


async def check_sample(url: str, token: str, wallets: list[Address], first: int) -> int:
    """Read back a few balances with `balanceOf`; how many were checked. May raise."""
    picks = sorted({0, len(wallets) // 2, len(wallets) - 1, *range(0, len(wallets), 9973)})[:12]
    async with DevnetRpc(url) as rpc:
        answers = await rpc.batch(
            [
                (
                    "eth_call",
                    [{"to": token, "data": "0x70a08231" + "00" * 12 + wallets[i][2:]}, "latest"],
                )
                for i in picks
            ]
        )
    for i, answer in zip(picks, answers, strict=True):
        if int(answer, 16) != amount_of(first + i):
            raise RuntimeError(
                f"balanceOf({wallets[i]}) is {int(answer, 16)}, wrote {amount_of(first + i)}:"
                " the storage slot formula does not match the token's layout"
            )
    return len(picks)


def spec_for(url: str, world: EvmDeployment, batch: int) -> EvmChainSpec:
    return EvmChainSpec(
        chain="devnet",
        chain_id=31337,
        endpoints=EndpointPolicy(urls=(url,), timeout_seconds=120.0),
        finality="latest",
        tokens=(world.tokens[TOKEN],),
        calls_per_batch=batch,
    )


def add_users(url: str, first: int, count: int) -> None:
    """Users `first+1 .. first+count` (one per wallet), COPYed."""
    buffer = io.StringIO()
    for user in range(first + 1, first + count + 1):
        buffer.write(f"{user}\tscale-{user}\n")
    with (
        psycopg.connect(libpq_url(url)) as conn,
        conn.cursor() as cursor,
        cursor.copy("COPY users (id, name) FROM STDIN") as copy,
    ):
        copy.write(buffer.getvalue())


def storage(url: str) -> tuple[int, int, dict[str, int]]:
    """(bytes of the observation tables with indexes, WAL position, rows per table)."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        sizes = 0
        rows: dict[str, int] = {}
        for table in OBSERVATION_TABLES:
            size = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            sizes += int(size[0]) if size else 0
            rows[table] = int(count[0]) if count else 0
        lsn = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return sizes, int(lsn[0]) if lsn else 0, rows


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_of_anvil(port: int) -> int:
    """The pid of the anvil process listening on `port` (found by its command line)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"anvil") and str(port).encode() in argv:
            return int(entry.name)
    raise RuntimeError(f"no anvil process on port {port}")


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


async def store(url: str, snapshot: ChainSnapshot, owners: dict[str, int]) -> tuple[float, str]:
    """Store the snapshot as a poll does; (seconds, a line of what was written)."""
    before_bytes, before_wal, before_rows = storage(url)
    database = Database(url)
    try:
        started = time.perf_counter()
        await record_snapshot(database, snapshot, owners, datetime.now(UTC), 0)
        seconds = time.perf_counter() - started
    finally:
        await database.dispose()
    after_bytes, after_wal, after_rows = storage(url)
    rows = {t: after_rows[t] - before_rows[t] for t in OBSERVATION_TABLES}
    n = len(owners)
    written = sum(rows.values())
    return seconds, (
        f"store: {seconds:.2f} s ({n / seconds:,.0f} wallets/s), {written:,} rows"
        f" ({', '.join(f'{t} {r:,}' for t, r in rows.items() if r)}),"
        f" {written / n:.3f} rows/wallet; tables +{(after_bytes - before_bytes) / n:,.0f} B/wallet,"
        f" WAL {(after_wal - before_wal) / n:,.0f} B/wallet"
    )


async def run(args: argparse.Namespace) -> None:
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    print(
        f"sizes {', '.join(f'{s:,}' for s in sizes)}; {args.runs} snapshot runs per size;"
        f" Python GC {'off' if args.gc_off else 'on'} while timing"
    )
    started_all = time.perf_counter()
    async with bench_database() as (db_url, label), AnvilNode(chain_id=31337) as node:
        print(machine(db_url))
        print(f"database: {label}, fresh, migrated to head; anvil {node.url}; {load()}")
        world = await deploy_demo_world(node.url)
        token = world.tokens[TOKEN].address
        assert token is not None
        spec = spec_for(node.url, world, args.batch)
        anvil_pid = pid_of_anvil(node.port)
        print(
            f"one ERC-20 line ({TOKEN}, DevToken.vy) per wallet;"
            f" calls_per_batch {args.batch}; balances via anvil_setStorageAt"
        )
        wallets: list[Address] = []
        results: list[tuple[int, float]] = []  # (wallets, median seconds)
        for size in sizes:
            first = len(wallets)
            seeding = time.perf_counter()
            fresh = [wallet(i) for i in range(first, size)]
            await write_balances(node.url, token, fresh, first)
            await mine(node.url, 1)
            checked = await check_sample(node.url, token, fresh, first)
            wallets.extend(fresh)
            if not args.no_store:
                add_users(db_url, first, len(fresh))
            seeding = time.perf_counter() - seeding
            print(
                f"\n{size:,} wallets: seeded {len(fresh):,} in {seeding:.1f} s"
                f" ({len(fresh) / seeding:,.0f} slots/s), {checked} checked with balanceOf;"
                f" {load()}"
            )
            adapter = EvmAdapter(spec)
            timings: list[float] = []
            snapshot: ChainSnapshot | None = None
            try:
                await adapter.snapshot(wallets[:100])  # warm the connection
                if args.gc_off:
                    gc.disable()
                ours, node_cpu = time.process_time(), cpu_seconds(anvil_pid)
                for _ in range(args.runs):
                    snapshot = None  # free the previous one before the next read
                    t0 = time.perf_counter()
                    snapshot = await adapter.snapshot(wallets)
                    timings.append(time.perf_counter() - t0)
                ours = (time.process_time() - ours) / args.runs
                node_cpu = (cpu_seconds(anvil_pid) - node_cpu) / args.runs
            finally:
                gc.enable()
                await adapter.aclose()
            assert snapshot is not None
            nonzero = sum(1 for b in snapshot.balances if b.amount_raw > 0)
            median = statistics.median(timings)
            results.append((size, median))
            print(
                f"snapshot: median {median:.3f} s (best {min(timings):.3f}; all"
                f" {', '.join(f'{t:.3f}' for t in timings)}), {median / size * 1e6:.2f} µs/wallet,"
                f" {size / median:,.0f} wallets/s, {snapshot.request_count} HTTP requests"
                f" ({snapshot.request_count / size * 1000:.2f} per 1,000 wallets);"
                f" {len(snapshot.balances):,} lines, {nonzero:,} nonzero,"
                f" {len(snapshot.issues)} issues; CPU per snapshot: this process"
                f" {ours / size * 1e6:.2f} µs/wallet, anvil {node_cpu / size * 1e6:.2f} µs/wallet;"
                f" {load()}"
            )
            if not args.no_store:
                owners: dict[str, int] = {w: i + 1 for i, w in enumerate(wallets)}
                _, line = await store(db_url, snapshot, owners)
                print(f"{line}; {load()}")
            del snapshot
        per_wallet = [seconds / size * 1e6 for size, seconds in results]
        print()
        if len(results) >= 2:
            ratio = max(per_wallet) / min(per_wallet)
            print(
                "µs/wallet by size: "
                + ", ".join(
                    f"{s:,}: {c:.2f}" for (s, _), c in zip(results, per_wallet, strict=True)
                )
                + f"; largest/smallest {ratio:.2f} ("
                + ("flat within 20 %" if ratio <= 1.2 else "NOT flat within 20 %")
                + ")"
            )
            slope, intercept = least_squares(
                [float(s) for s, _ in results], [seconds for _, seconds in results]
            )
            print(
                f"fit snapshot seconds = {slope * 1e6:.3f} µs x wallets + {intercept * 1000:.1f} ms"
                f" (least squares over {', '.join(f'{s:,}' for s, _ in results)} wallets)"
            )
    print(f"wall time {time.perf_counter() - started_all:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="wallet counts")
    parser.add_argument("--runs", type=int, default=3, help="snapshots timed per size")
    parser.add_argument("--batch", type=int, default=1000, help="calls per aggregate3")
    parser.add_argument("--no-store", action="store_true", help="skip record_snapshot")
    parser.add_argument(
        "--gc-off",
        action="store_true",
        help="disable Python's cyclic GC while timing (shows what GC costs a large snapshot)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
