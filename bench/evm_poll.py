"""Benchmark: one EvmAdapter poll of 10,000 (wallet, asset) balance lines at one block.

Starts its own anvil, deploys the demo tokens, gives 2,500 wallets a nonzero balance of the
native coin and of USDC, WETH and WBTC (10,000 lines), then times `EvmAdapter.snapshot` and,
for comparison, a naive loop of web3 contract `balanceOf().call()` (and `get_balance`) one line
at a time, measured on a sample and extrapolated. Prints figures; asserts nothing about time.

Run: .venv/bin/python bench/evm_poll.py [--wallets 2500] [--batch 1000] [--naive-sample 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from eth_typing import ChecksumAddress, HexAddress, HexStr
from eth_utils.crypto import keccak
from web3 import Web3

from chains.base import Address
from chains.evm.adapter import EvmAdapter
from chains.evm.address import to_checksum
from chains.evm.anvil import DevnetRpc
from chains.evm.devnet import AnvilNode, deploy_demo_world, mine, mint_many

ERC20_BALANCE_OF_ABI = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]


def bench_wallets(count: int) -> list[Address]:
    return [Address(to_checksum(keccak(b"xmargin-bench-%d" % i)[12:].hex())) for i in range(count)]


async def seed(url: str, wallets: list[Address]) -> None:
    world = await deploy_demo_world(url)
    async with DevnetRpc(url) as rpc:
        for start in range(0, len(wallets), 500):
            await rpc.batch(
                [
                    ("anvil_setBalance", [wallet, hex(10**18 + index)])
                    for index, wallet in enumerate(wallets[start : start + 500], start)
                ]
            )
    for symbol in world.tokens:
        await mint_many(url, world, symbol, wallets, [1_000_000 + i for i in range(len(wallets))])
    await mine(url, 1)


def naive_loop(
    url: str,
    spec_tokens: list[tuple[str | None, int]],
    wallets: list[Address],
    block: int,
    sample: int,
) -> tuple[float, int]:
    """Seconds for `sample` lines read one by one with web3 contract objects, and lines read."""
    w3 = Web3(Web3.HTTPProvider(url))
    contracts = {
        address: w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=ERC20_BALANCE_OF_ABI
        )
        for address, _ in spec_tokens
        if address is not None
    }
    lines = [(wallet, address) for wallet in wallets for address, _ in spec_tokens][:sample]
    started = time.perf_counter()
    for wallet, address in lines:
        if address is None:
            w3.eth.get_balance(ChecksumAddress(HexAddress(HexStr(wallet))), block_identifier=block)
        else:
            contracts[address].functions.balanceOf(wallet).call(block_identifier=block)
    return time.perf_counter() - started, len(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=1000, help="calls per aggregate3")
    parser.add_argument("--naive-sample", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    wallets = bench_wallets(args.wallets)
    async with AnvilNode(chain_id=31337) as node:
        seeding = time.perf_counter()
        await seed(node.url, wallets)
        seeding = time.perf_counter() - seeding
        from chains.evm.devnet import demo_deployment

        spec = demo_deployment().chain_spec(
            [node.url],
            finality="latest",
            with_aave=False,
            with_feeds=False,
            calls_per_batch=args.batch,
        )
        adapter = EvmAdapter(spec)
        try:
            await adapter.snapshot(wallets[:10])  # warm the connection and the node
            timings: list[float] = []
            snapshot = None
            for _ in range(args.runs):
                started = time.perf_counter()
                snapshot = await adapter.snapshot(wallets)
                timings.append(time.perf_counter() - started)
        finally:
            await adapter.aclose()
        assert snapshot is not None
        lines = len(snapshot.balances)
        nonzero = sum(1 for balance in snapshot.balances if balance.amount_raw > 0)
        token_lines = [(token.address, token.decimals) for token in spec.tokens]
        naive_seconds, naive_lines = await asyncio.to_thread(
            naive_loop,
            node.url,
            token_lines,
            wallets,
            snapshot.read_point.height,
            args.naive_sample,
        )
    naive_total = naive_seconds / naive_lines * lines
    best, median = min(timings), statistics.median(timings)
    print(
        f"lines: {lines} (wallets {len(wallets)} x assets {len(spec.tokens)}), "
        f"nonzero {nonzero}, issues {len(snapshot.issues)}, block {snapshot.read_point.height}"
    )
    print(f"seeding: {seeding:.2f} s")
    print(
        f"adapter snapshot: best {best:.3f} s, median {median:.3f} s over {args.runs} runs "
        f"(calls_per_batch {args.batch}); first run {timings[0]:.3f} s; "
        f"all: {', '.join(f'{t:.3f}' for t in timings)}"
    )
    print(f"http requests per snapshot: {snapshot.request_count}")
    print(
        f"naive web3 loop: {naive_seconds:.3f} s for a sample of {naive_lines} lines "
        f"({naive_seconds / naive_lines * 1000:.2f} ms/line), extrapolated to {lines} lines: "
        f"{naive_total:.1f} s"
    )
    print(f"speed-up (extrapolated naive / median snapshot): {naive_total / median:.0f}x")


if __name__ == "__main__":
    asyncio.run(main())
