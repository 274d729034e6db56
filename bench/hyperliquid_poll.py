"""Poll 1,000 Hyperliquid accounts through the local info server and print the figures.

The server runs in its own process (`python -m chains.hyperliquid.localnet`) with 1,000
synthetic accounts (cash, a cross ETH long, spot USDC). Three runs, each with a fresh adapter:

  unthrottled  a budget far above what a sweep needs: what the adapter and the local server do
               flat out (accounts per second, requests).
  first sweep  the real budget, 1,200 weight per "minute", with the minute scaled down to
               `60/scale` seconds (the server enforces the same limit and would answer 429):
               one poll a minute, each reading what the budget leaves; account modes are not
               known yet, so each account costs userAbstraction (20) + the two states (2 + 2).
  steady sweep the same, modes cached: 4 weight an account, 20 for metaAndAssetCtxs a poll.

Then the time a full sweep of N accounts takes on mainnet's public endpoint (1,200 weight per
minute per IP), from the weights alone.

Usage: .venv/bin/python bench/hyperliquid_poll.py [--users 1000] [--scale 10] [--port 18970]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import subprocess
import sys
import time
from dataclasses import replace

import httpx

from chains.base import AdapterError, Address
from chains.hyperliquid.adapter import HyperliquidAdapter
from chains.hyperliquid.localnet import demo_spec
from chains.hyperliquid.spec import (
    WEIGHT_META_AND_ASSET_CTXS,
    WEIGHT_PER_MINUTE,
    WEIGHT_PER_USER,
    WEIGHT_USER_ABSTRACTION,
)


def start_server(port: int, limit: int, window: float) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "chains.hyperliquid.localnet", "--port", str(port)),
            *("--weight-limit", str(limit), "--window-seconds", str(window)),
        ],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if b"listening" not in line:
        raise SystemExit(f"local info server did not start: {line!r}")
    return process


def control(url: str, **body: object) -> dict[str, object]:
    answer = httpx.post(url.replace("/info", "/control"), json=body, timeout=60)
    answer.raise_for_status()
    result: dict[str, object] = answer.json()
    return result


async def sweep(
    adapter: HyperliquidAdapter, users: list[Address], window: float | None
) -> tuple[int, int, float]:
    """Poll (one poll per `window` seconds, or back to back) until every account has been read
    once by this adapter; (polls, requests, seconds)."""
    seen: set[str] = set()
    polls = requests = 0
    started = time.perf_counter()
    while len(seen) < len(users):
        poll_started = time.perf_counter()
        try:
            snapshot = await adapter.snapshot(users)
        except AdapterError as error:
            raise SystemExit(f"poll failed: {error}") from None
        polls += 1
        requests += snapshot.request_count
        unread = {i.subject for i in snapshot.issues if i.message.startswith("not read")}
        seen |= set(users) - unread
        if window is not None and len(seen) < len(users):
            await asyncio.sleep(max(0.0, poll_started + window - time.perf_counter()))
    return polls, requests, time.perf_counter() - started


def mainnet_minutes(accounts: int, per_account: int) -> float:
    """One poll a minute: metaAndAssetCtxs, then as many accounts as the rest of the minute's
    budget allows."""
    per_minute = (WEIGHT_PER_MINUTE - WEIGHT_META_AND_ASSET_CTXS) // per_account
    return accounts / per_minute


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=10.0, help="a minute lasts 60/scale s")
    parser.add_argument("--port", type=int, default=18970)
    args = parser.parse_args()
    window = 60.0 / args.scale
    server = start_server(args.port, WEIGHT_PER_MINUTE, window)
    url = f"http://127.0.0.1:{args.port}/info"
    try:
        seeded = control(url, op="seed_synthetic", count=args.users)["users"]
        assert isinstance(seeded, list)
        users = [Address(str(user)) for user in seeded]
        base = demo_spec((url,), chain="bench", concurrent_users=8)
        print(f"{args.users} accounts, local info server (own process), minute = {window:g} s")

        control(url, op="limit", weight=10**9, window_seconds=window)
        flat = HyperliquidAdapter(replace(base, weight_per_minute=10**9))
        try:
            polls, requests, seconds = await sweep(flat, users, None)
        finally:
            await flat.aclose()
        control(url, op="limit", weight=WEIGHT_PER_MINUTE, window_seconds=window)
        print(
            f"unthrottled : {seconds:.2f} s, {args.users / seconds:,.0f} accounts/s, "
            f"{requests} requests ({requests / seconds:,.0f}/s) in {polls} poll"
        )

        scaled = HyperliquidAdapter(
            replace(base, budget_window_seconds=window, budget_wait_seconds=window / 30)
        )
        try:
            for label in ("first sweep", "steady sweep"):
                polls, requests, seconds = await sweep(scaled, users, window)
                print(
                    f"{label:12}: {polls} polls ({polls} scaled minutes), {requests} requests, "
                    f"{seconds:.2f} s = {seconds / window:.1f} scaled minutes, "
                    f"{args.users / (seconds / window):,.0f} accounts per minute"
                )
        finally:
            await scaled.aclose()
        stats = control(url, op="stats")
        print(f"server: {stats['calls']}, 429s sent: {stats['rejected']}")
    finally:
        server.terminate()
        server.wait()

    print("mainnet public endpoint, 1,200 weight/min/IP, one poll a minute:")
    steady = (WEIGHT_PER_MINUTE - WEIGHT_META_AND_ASSET_CTXS) // WEIGHT_PER_USER
    first = (WEIGHT_PER_MINUTE - WEIGHT_META_AND_ASSET_CTXS) // (
        WEIGHT_PER_USER + WEIGHT_USER_ABSTRACTION
    )
    print(f"  {steady} accounts/min with modes cached, {first} on the first sweep")
    for accounts in (1_000, 10_000, 100_000):
        print(
            f"  {accounts:>7,} accounts: full sweep {math.ceil(mainnet_minutes(accounts, 4))} min"
            f" (first sweep {math.ceil(mainnet_minutes(accounts, 24))} min)"
        )


if __name__ == "__main__":
    asyncio.run(main())
