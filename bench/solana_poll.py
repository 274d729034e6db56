"""Poll 10,000 token accounts through the local Solana JSON-RPC server and print the figures.

World: 5,000 wallets, each with a USDC (SPL Token) and a PYUSD (Token-2022) associated token
account = N = 10,000 token accounts. For speed of set-up the token accounts are written with
`set_account` in the real 165-byte layout owned by the token programs (not minted through
transactions, as the tests do). Token-account discovery (getTokenAccountsByOwner per wallet) is
off here: it costs two requests per wallet by nature. The measured path includes the server.

Two snapshots per round, both printed with the server's own count of what was asked:
  tokens-only  `native_balances=False`: exactly the N token accounts are read, so the target
               "ceil(N/100) getMultipleAccounts requests" is checked literally (plus one
               getLatestBlockhash for the pinned slot and one getBlockTime for its timestamp).
  full         the production default: the N token accounts plus the 5,000 wallet accounts
               themselves (native SOL) = 15,000 accounts, ceil(15,000/100) = 150 requests + 2.

Usage: .venv/bin/python bench/solana_poll.py [--wallets 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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


async def measure(
    chain: LocalSolana, spec: SolanaChainSpec, wallets: list[Address], label: str
) -> None:
    token_accounts = len(spec.mints) * len(wallets)
    accounts = token_accounts + (len(wallets) if spec.native_balances else 0)
    expected_gma = math.ceil(accounts / spec.accounts_per_request)
    adapter = SolanaAdapter(spec)
    chain.reset_rpc_calls()
    started = time.perf_counter()
    snapshot = await adapter.snapshot(wallets)
    elapsed = time.perf_counter() - started
    await adapter.aclose()
    calls = chain.rpc_calls()
    tokens = sum(1 for b in snapshot.balances if b.token_address is not None)
    others = ", ".join(
        f"{calls[method]} {method}"
        for method in sorted(calls)
        if method not in ("getMultipleAccounts", "getMultipleAccounts.keys")
    )
    print(
        f"  {label:<11} {elapsed:6.3f} s wall, {snapshot.request_count} requests: "
        f"{calls.get('getMultipleAccounts', 0)} getMultipleAccounts for "
        f"{calls.get('getMultipleAccounts.keys', 0)} accounts "
        f"(target ceil({accounts}/{spec.accounts_per_request}) = {expected_gma}) + {others}; "
        f"{tokens} token balances, {len(snapshot.balances) - tokens} native, "
        f"{len(snapshot.issues)} issues, slot {snapshot.read_point.height}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wallets", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with LocalSolana() as chain:
        started = time.perf_counter()
        wallets = build_world(chain, args.wallets)
        print(
            f"set-up: {args.wallets} wallets, N = {2 * args.wallets} token accounts in "
            f"{time.perf_counter() - started:.2f} s"
        )
        full = SolanaChainSpec(
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
        tokens_only = dataclasses.replace(full, native_balances=False)
        print(
            "tokens-only: the N token accounts only (native_balances=False); "
            "full: N token accounts + one account per wallet for native SOL"
        )
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}:")
            await measure(chain, tokens_only, wallets, "tokens-only")
            await measure(chain, full, wallets, "full")


if __name__ == "__main__":
    asyncio.run(main())
