"""Venue accounts in a polled snapshot of the LiteSVM localnet (no mocks): the demo world's
Drift user, Kamino obligation and MarginFi account come back as `VenueAccount`s read in the same
pass, and each venue's rules measure them.

The demo world's markets name no oracle and its reserves hold no price, so the test then gives
them one through the chain: the Drift spot markets and banks are pointed at the demo Pyth
accounts, the real mainnet SOL-PERP account (tests/fixtures/solana/real_accounts) is written at
the perp market PDA with the demo SOL oracle, and the Kamino reserves get a market price."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from solders.pubkey import Pubkey

from aggregator.venues import drift as drift_rules
from aggregator.venues import kamino as kamino_rules
from aggregator.venues import marginfi as marginfi_rules
from aggregator.venues.model import VenueParameterError
from chains.base import Address
from chains.solana.adapter import SolanaAdapter
from chains.solana.localnet import DEMO_SOLANA, LocalSolana, demo_spec, seed_demo_world
from chains.solana.plan import perp_market_address

ALICE, BOB = Address(DEMO_SOLANA.alice), Address(DEMO_SOLANA.bob)
RULES = {"drift": drift_rules.RULES, "kamino": kamino_rules.RULES, "marginfi": marginfi_rules.RULES}
REAL = Path(__file__).resolve().parents[2] / "fixtures" / "solana" / "real_accounts"
PYTH_PULL, PYTH_STABLE_COIN_PULL, PYTH_PUSH_ORACLE_SETUP = 7, 10, 3


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalSolana]:
    with LocalSolana() as local:
        seed_demo_world(local)
        yield local


def _data(chain: LocalSolana, address: str | Pubkey) -> bytearray:
    key = Pubkey.from_string(address) if isinstance(address, str) else address
    account = chain.ledger.svm.get_account(key)
    assert account is not None
    return bytearray(account.data)


def _give_venues_prices(chain: LocalSolana) -> None:
    demo = DEMO_SOLANA
    drift_program = Pubkey.from_string(demo.drift_program)
    for address, oracle, source in (
        (demo.drift_spot_usdc, demo.pyth_usdc_usd, PYTH_STABLE_COIN_PULL),
        (demo.drift_spot_sol, demo.pyth_sol_usd, PYTH_PULL),
    ):
        data = _data(chain, address)
        data[40:72], data[687] = bytes(Pubkey.from_string(oracle)), source
        chain.set_raw_account(address, bytes(data), demo.drift_program)
    fixture = json.loads((REAL / "drift_perp_market_sol_slot405286944.json").read_text())
    perp = bytearray(base64.b64decode(fixture["data_base64"]))
    perp_key = perp_market_address(drift_program, 0)
    perp[8:40], perp[40:72], perp[926] = bytes(perp_key), bytes(
        Pubkey.from_string(demo.pyth_sol_usd)), PYTH_PULL  # fmt: skip
    chain.set_raw_account(perp_key, bytes(perp), demo.drift_program)
    for reserve, price in ((demo.kamino_reserve_sol, 150), (demo.kamino_reserve_usdc, 1)):
        data = _data(chain, reserve)
        struct.pack_into("<QQ", data, 248, (price << 60) & (2**64 - 1), (price << 60) >> 64)
        chain.set_raw_account(reserve, bytes(data), demo.kamino_program)
    for bank, oracle in (
        (demo.marginfi_bank_usdc, demo.pyth_usdc_usd),
        (demo.marginfi_bank_sol, demo.pyth_sol_usd),
    ):
        data = _data(chain, bank)
        data[609], data[610:642] = PYTH_PUSH_ORACLE_SETUP, bytes(Pubkey.from_string(oracle))
        chain.set_raw_account(bank, bytes(data), demo.marginfi_program)
    chain.finalize()


async def test_polled_snapshot_carries_measurable_venue_accounts(chain: LocalSolana) -> None:
    adapter = SolanaAdapter(demo_spec((chain.url,), marginfi=True))
    try:
        before = await adapter.snapshot([ALICE, BOB])
        # the demo markets name no oracle: the accounts are there, without venue prices
        venues = {(v.account, v.venue): v for v in before.venue_accounts}
        assert set(venues) == {(ALICE, "drift"), (BOB, "kamino"), (BOB, "marginfi")}
        assert venues[(ALICE, "drift")].problem is not None  # no perp market account yet
        for name in ("kamino", "marginfi"):
            account = venues[(BOB, name)]
            assert account.problem is None and {a.price for a in account.assets} == {None}
            with pytest.raises(VenueParameterError, match="no venue price"):
                RULES[name].measure(account, {})

        _give_venues_prices(chain)
        chain.reset_rpc_calls()
        snapshot = await adapter.snapshot([ALICE, BOB])
        first_calls = chain.rpc_calls()["getMultipleAccounts"]
        chain.reset_rpc_calls()
        again = await adapter.snapshot([ALICE, BOB])
        second_calls = chain.rpc_calls()["getMultipleAccounts"]
    finally:
        await adapter.aclose()

    # the oracles the markets name were unknown: read again in one pass; then planned up front
    assert (first_calls, second_calls) == (2, 1)
    assert again.venue_accounts == snapshot.venue_accounts
    assert snapshot.issues == ()
    positions = {(p.account, p.venue) for p in snapshot.positions}
    venues = {(v.account, v.venue): v for v in snapshot.venue_accounts}
    assert set(venues) == positions == {(ALICE, "drift"), (BOB, "kamino"), (BOB, "marginfi")}
    for account in venues.values():
        assert account.problem is None
        assert {a.asset: a.price for a in account.assets} == {
            a.asset: Decimal(150) if a.asset == "SOL" else Decimal(1) for a in account.assets
        }
        measure = RULES[account.rules].measure(account, {})
        assert measure.metric is not None and measure.metric.is_finite()
        shocked = RULES[account.rules].measure(account, {"SOL": Decimal(75)})
        # alice's long perp and bob's Kamino SOL collateral lose; bob's MarginFi SOL debt shrinks
        if account.venue == "marginfi":
            assert shocked.margin > measure.margin
        else:
            assert shocked.margin < measure.margin
    drift = venues[(ALICE, "drift")]
    assert drift.subaccount == str(
        Pubkey.find_program_address(
            [b"user", bytes(Pubkey.from_string(ALICE)), bytes(2)],
            Pubkey.from_string(DEMO_SOLANA.drift_program),
        )[0]
    )
    assert venues[(BOB, "marginfi")].subaccount == DEMO_SOLANA.marginfi_account_bob
