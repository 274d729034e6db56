"""The Solana adapter against the real local RPC over LiteSVM (no mocks): the demo world,
bad accounts, discovery, chunking, commitment lag, and the server run as a subprocess."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import sys
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from solders.pubkey import Pubkey

from chains.base import Address
from chains.solana.adapter import SolanaAdapter
from chains.solana.localnet import (
    DEMO_SOLANA,
    LocalSolana,
    demo_spec,
    keypair_from_seed,
    seed_demo_world,
)
from chains.solana.spec import SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM

ALICE, BOB = Address(DEMO_SOLANA.alice), Address(DEMO_SOLANA.bob)


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalSolana]:
    with LocalSolana() as local:
        seed_demo_world(local)
        yield local


def rpc(url: str, method: str, params: list[Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


async def snap(url: str, wallets: list[Address], **changes: Any) -> Any:
    adapter = SolanaAdapter(dataclasses.replace(demo_spec((url,)), **changes))
    try:
        return await adapter.snapshot(wallets)
    finally:
        await adapter.aclose()


async def test_demo_world_snapshot_has_every_balance_position_and_price(
    chain: LocalSolana,
) -> None:
    snapshot = await snap(chain.url, [ALICE, BOB])

    balances = {(b.account, b.asset): b.amount_raw for b in snapshot.balances}
    assert balances == {
        (ALICE, "SOL"): 10 * 10**9,
        (ALICE, "USDC"): 25_000 * 10**6,
        (ALICE, "PYUSD"): 1_000 * 10**6,
        (BOB, "SOL"): 50 * 10**9,
        (BOB, "USDC"): 500 * 10**6,
        (BOB, "PYUSD"): 0,
    }
    positions = {(p.account, p.venue, p.asset, p.kind): p for p in snapshot.positions}
    assert positions[(ALICE, "drift", "USDC", "deposit")].amount_raw == 5_000 * 10**6
    assert positions[(ALICE, "drift", "SOL", "borrow")].amount_raw == -2 * 10**9
    perp = positions[(ALICE, "drift", "SOL", "perp")]
    assert (perp.amount_raw, perp.decimals, perp.entry_price) == (10 * 10**9, 9, Decimal(140))
    assert positions[(BOB, "kamino", "SOL", "deposit")].amount_raw == 20 * 10**9
    assert positions[(BOB, "kamino", "USDC", "borrow")].amount_raw == -1_000 * 10**6
    prices = {p.asset: (p.price, p.conf, p.valid) for p in snapshot.prices}
    assert prices == {
        "SOL": (Decimal(150), Decimal("0.05"), True),
        "USDC": (Decimal(1), Decimal("0.0005"), True),
    }
    assert snapshot.issues == ()
    assert snapshot.read_point.finality == "finalized"
    assert snapshot.caip2 == f"solana:{DEMO_SOLANA.genesis_hash[:32]}"
    # getGenesisHash (a new adapter checks its endpoint once) + getLatestBlockhash + discovery
    # (2 wallets x 2 token programs) + 1 chunk + getBlockTime
    assert snapshot.request_count == 1 + 1 + 4 + 1 + 1


async def test_bad_account_data_is_one_issue_naming_the_account_and_nothing_else_is_lost(
    chain: LocalSolana,
) -> None:
    wallet = keypair_from_seed("integration:bad-ata").pubkey()
    chain.airdrop(wallet, 2 * 10**9)
    chain.mint_to(wallet, DEMO_SOLANA.pyusd_mint, 77)
    bad_ata = chain.ata(wallet, DEMO_SOLANA.usdc_mint)
    chain.set_raw_account(bad_ata, b"\x01" * 120, SPL_TOKEN_PROGRAM)  # wrong size
    chain.finalize()

    snapshot = await snap(chain.url, [Address(str(wallet)), ALICE, Address("0xnot-base58")])

    assert [(i.subject, "120 bytes" in i.message) for i in snapshot.issues] == [
        ("0xnot-base58", False),
        (str(bad_ata), True),
    ]
    mine = {b.asset: b.amount_raw for b in snapshot.balances if b.account == str(wallet)}
    assert mine == {"SOL": 2 * 10**9, "PYUSD": 77}
    assert sum(1 for b in snapshot.balances if b.account == ALICE) == 3


async def test_non_ata_token_accounts_are_discovered_and_unknown_mints_reported(
    chain: LocalSolana,
) -> None:
    wallet = keypair_from_seed("integration:discovery").pubkey()
    usdc = Pubkey.from_string(DEMO_SOLANA.usdc_mint)
    other_mint = chain.create_mint(9, SPL_TOKEN_PROGRAM, seed="integration:unlisted-mint")
    side_account = keypair_from_seed("integration:side-account").pubkey()
    spam_account = keypair_from_seed("integration:spam-account").pubkey()
    chain.set_token_accounts(
        [(side_account, usdc, wallet, 4_200), (spam_account, other_mint, wallet, 1)],
        SPL_TOKEN_PROGRAM,
    )
    chain.finalize()

    snapshot = await snap(chain.url, [Address(str(wallet))])

    usdc_lines = [(b.holder, b.amount_raw) for b in snapshot.balances if b.asset == "USDC"]
    assert sorted(usdc_lines) == sorted(
        [(str(chain.ata(wallet, usdc)), 0), (str(side_account), 4_200)]
    )
    assert [(i.subject, str(other_mint) in i.message) for i in snapshot.issues] == [
        (str(spam_account), True)
    ]

    without = await snap(chain.url, [Address(str(wallet))], discover_token_accounts=False)
    assert [b.amount_raw for b in without.balances if b.asset == "USDC"] == [0]
    assert without.issues == ()


async def test_accounts_are_read_in_chunks_of_100_at_one_slot(chain: LocalSolana) -> None:
    wallets = [
        Address(str(keypair_from_seed(f"integration:many:{n}").pubkey())) for n in range(120)
    ]
    for wallet in wallets[:3]:
        chain.airdrop(wallet, 10**9)
    chain.finalize()

    snapshot = await snap(
        chain.url, wallets, discover_token_accounts=False, drift=None, kamino=None, feeds=()
    )

    accounts = 3 * len(wallets)  # wallet + USDC ATA + PYUSD ATA
    assert snapshot.request_count == math.ceil(accounts / 100) + 2 + 1  # + getGenesisHash
    assert len(snapshot.balances) == accounts
    assert sum(b.amount_raw for b in snapshot.balances if b.asset == "SOL") == 3 * 10**9
    assert "context_slots" not in snapshot.extra


async def test_without_native_balances_only_the_token_accounts_are_read(
    chain: LocalSolana,
) -> None:
    wallets = [
        Address(str(keypair_from_seed(f"integration:tokens-only:{n}").pubkey())) for n in range(75)
    ]
    chain.reset_rpc_calls()

    snapshot = await snap(
        chain.url,
        wallets,
        discover_token_accounts=False,
        drift=None,
        kamino=None,
        feeds=(),
        native_balances=False,
    )

    calls = chain.rpc_calls()
    token_accounts = 2 * len(wallets)  # USDC ATA + PYUSD ATA: N = 150
    assert calls == {
        "getGenesisHash": 1,  # once per endpoint of a new adapter
        "getLatestBlockhash": 1,
        "getMultipleAccounts": math.ceil(token_accounts / 100),  # 2
        "getMultipleAccounts.keys": token_accounts,
        "getBlockTime": 1,
    }
    assert snapshot.request_count == 1 + 2 + 2
    assert sorted({b.asset for b in snapshot.balances}) == ["PYUSD", "USDC"]
    assert len(snapshot.balances) == token_accounts


async def test_marginfi_keypair_accounts_are_discovered_and_valued_with_their_banks(
    chain: LocalSolana,
) -> None:
    adapter = SolanaAdapter(demo_spec((chain.url,), marginfi=True))
    chain.reset_rpc_calls()
    try:
        snapshot = await adapter.snapshot([ALICE, BOB])
    finally:
        await adapter.aclose()

    marginfi = {
        (p.account, p.asset, p.kind): (p.amount_raw, p.decimals, p.market)
        for p in snapshot.positions
        if p.venue == "marginfi"
    }
    assert marginfi == {
        (BOB, "USDC", "deposit"): (2_125 * 10**6, 6, DEMO_SOLANA.marginfi_bank_usdc),
        (BOB, "SOL", "borrow"): (-5 * 10**9, 9, DEMO_SOLANA.marginfi_bank_sol),
    }
    assert snapshot.issues == ()
    # one getProgramAccounts per wallet (bob's account is a keypair account: not derivable)
    assert chain.rpc_calls()["getProgramAccounts"] == 2


async def test_confirmed_sees_a_change_that_finalized_does_not_yet(chain: LocalSolana) -> None:
    wallet = Address(str(keypair_from_seed("integration:lag").pubkey()))
    chain.mint_to(wallet, DEMO_SOLANA.usdc_mint, 1_000)
    chain.finalize()
    chain.mint_to(wallet, DEMO_SOLANA.usdc_mint, 500)
    chain.advance_slots(chain.ledger.confirmed_lag)

    finalized = await snap(chain.url, [wallet])
    confirmed = await snap(chain.url, [wallet], commitment="confirmed")

    def usdc(snapshot: Any) -> int:
        return sum(b.amount_raw for b in snapshot.balances if b.asset == "USDC")

    assert (usdc(finalized), usdc(confirmed)) == (1_000, 1_500)
    assert confirmed.read_point.height - finalized.read_point.height == (
        chain.ledger.finalized_lag - chain.ledger.confirmed_lag
    )
    chain.finalize()
    assert usdc(await snap(chain.url, [wallet])) == 1_500


def test_rpc_answers_min_context_slot_and_bad_params_with_solana_error_codes(
    chain: LocalSolana,
) -> None:
    finalized = chain.slot - chain.ledger.finalized_lag
    too_new = {"commitment": "finalized", "minContextSlot": finalized + 1}
    assert rpc(chain.url, "getSlot", [too_new])["error"]["code"] == -32016
    assert rpc(chain.url, "getSlot", [{"commitment": "finalized"}])["result"] == finalized
    assert rpc(chain.url, "getBalance", ["not-a-key"])["error"]["code"] == -32602
    assert rpc(chain.url, "getBlockTime", [chain.slot + 1])["error"]["code"] == -32004
    info = rpc(chain.url, "getAccountInfo", [TOKEN_2022_PROGRAM, {"encoding": "base64"}])
    assert info["result"]["value"]["executable"] is True


async def test_server_runs_as_a_subprocess_for_the_demo() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "chains.solana.localnet", "--port", "0", "--seed-demo"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")

        snapshot = await snap(url, [ALICE])

        usdc = [b.amount_raw for b in snapshot.balances if b.asset == "USDC"]
        assert usdc == [25_000 * 10**6]
        genesis = await asyncio.to_thread(rpc, url, "getGenesisHash", [])
        assert genesis["result"] == DEMO_SOLANA.genesis_hash
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
