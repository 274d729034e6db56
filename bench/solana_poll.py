"""Poll 10,000 token accounts through the local Solana JSON-RPC server and print the figures.

World: 5,000 wallets, each with a USDC (SPL Token) and a PYUSD (Token-2022) associated token
account = 10,000 token accounts, plus the 5,000 wallet accounts themselves (native SOL), so one
snapshot reads 15,000 accounts. For speed of set-up the token accounts are written with
`set_account` in the real 165-byte layout owned by the token programs (not minted through
transactions, as the tests do). Token-account discovery (getTokenAccountsByOwner per wallet) is
off here: it costs two requests per wallet by nature. The measured path includes the server.

Usage: .venv/bin/python bench/solana_poll.py [--wallets 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

from solders.pubkey import Pubkey

from chains.base import Address, EndpointPolicy
from chains.solana.adapter import SolanaAdapter
from chains.solana.decoders.spl_token import associated_token_address
from chains.solana.localnet import LocalSolana, keypair_from_seed
from chains.solana.spec import SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM, SolanaChainSpec, SplMint


def build_world(chain: LocalSolana, wallets: int) -> list[Address]:
    usdc = chain.create_mint(6, SPL_TOKEN_PROGRAM, seed="bench:usdc")
    pyusd = chain.create_mint(6, TOKEN_2022_PROGRAM, seed="bench:pyusd")
    keys = [keypair_from_seed(f"bench:wallet:{index}").pubkey() for index in range(wallets)]
    for mint, program in ((usdc, SPL_TOKEN_PROGRAM), (pyusd, TOKEN_2022_PROGRAM)):
        program_key = Pubkey.from_string(program)
        chain.set_token_accounts(
            (
                (associated_token_address(key, mint, program_key), mint, key, 1_000_000 + index)
                for index, key in enumerate(keys)
            ),
            program,
        )
    for key in keys:
        chain.set_raw_account(key, b"", Pubkey.default(), lamports=5_000_000_000)
    chain.finalize()
    return [Address(str(key)) for key in keys]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wallets", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with LocalSolana() as chain:
        started = time.perf_counter()
        wallets = build_world(chain, args.wallets)
        print(
            f"set-up: {args.wallets} wallets, {2 * args.wallets} token accounts in "
            f"{time.perf_counter() - started:.2f} s"
        )
        spec = SolanaChainSpec(
            chain="solana-bench",
            genesis_hash=str(chain.ledger.genesis_hash),
            endpoints=EndpointPolicy(urls=(chain.url,)),
            mints=(
                SplMint("USDC", str(keypair_from_seed("bench:usdc").pubkey()), 6),
                SplMint(
                    "PYUSD", str(keypair_from_seed("bench:pyusd").pubkey()), 6, TOKEN_2022_PROGRAM
                ),
            ),
            discover_token_accounts=False,
        )
        accounts = 3 * args.wallets
        expected = math.ceil(accounts / spec.accounts_per_request) + 2
        for round_number in range(1, args.rounds + 1):
            adapter = SolanaAdapter(spec)
            started = time.perf_counter()
            snapshot = await adapter.snapshot(wallets)
            elapsed = time.perf_counter() - started
            await adapter.aclose()
            tokens = sum(1 for b in snapshot.balances if b.token_address is not None)
            print(
                f"round {round_number}: {elapsed:.3f} s wall, {snapshot.request_count} requests "
                f"(expected ceil({accounts}/100) + getLatestBlockhash + getBlockTime = {expected}),"
                f" {tokens} token balances, {len(snapshot.balances) - tokens} native,"
                f" {len(snapshot.issues)} issues, slot {snapshot.read_point.height}"
            )


if __name__ == "__main__":
    asyncio.run(main())
