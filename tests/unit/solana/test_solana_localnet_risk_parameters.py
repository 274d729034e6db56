"""The local chain's demo accounts carry risk parameters at the real layouts' offsets, so the
decoders that read mainnet accounts read them too (no RPC server: the ledger is read directly)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from solders.pubkey import Pubkey

from chains.solana.decoders import drift, kamino, marginfi
from chains.solana.localnet import DEMO_SOLANA, LocalSolana, seed_demo_world


@pytest.fixture(scope="module")
def local() -> Iterator[LocalSolana]:
    chain = LocalSolana(start=False)
    try:
        seed_demo_world(chain)
        yield chain
    finally:
        chain.close()


def _data(local: LocalSolana, address: str | Pubkey) -> bytes:
    key = Pubkey.from_string(address) if isinstance(address, str) else address
    account = local.ledger.svm.get_account(key)
    assert account is not None
    return bytes(account.data)


def test_demo_kamino_reserves_have_the_real_reserves_ltv_and_threshold(local: LocalSolana) -> None:
    sol = kamino.decode_reserve(_data(local, DEMO_SOLANA.kamino_reserve_sol))
    usdc = kamino.decode_reserve(_data(local, DEMO_SOLANA.kamino_reserve_usdc))
    assert (sol.loan_to_value_pct, sol.liquidation_threshold_pct, sol.borrow_factor_pct) == (
        74,
        75,
        125,
    )
    assert (usdc.loan_to_value_pct, usdc.liquidation_threshold_pct, usdc.borrow_factor_pct) == (
        80,
        90,
        100,
    )
    assert sol.collateral_to_liquidity(16 * 10**9) == 20 * 10**9  # the demo's 1.25 rate kept


def test_demo_marginfi_banks_have_weights(local: LocalSolana) -> None:
    usdc = marginfi.decode_bank(_data(local, DEMO_SOLANA.marginfi_bank_usdc))
    sol = marginfi.decode_bank(_data(local, DEMO_SOLANA.marginfi_bank_sol))
    assert (
        usdc.asset_weight_init,
        usdc.asset_weight_maint,
        usdc.liability_weight_init,
        usdc.liability_weight_maint,
    ) == (1, 1, Decimal("1.25"), Decimal("1.125"))
    assert (
        sol.asset_weight_init,
        sol.asset_weight_maint,
        sol.liability_weight_init,
        sol.liability_weight_maint,
    ) == (Decimal("0.625"), Decimal("0.75"), Decimal("1.25"), Decimal("1.125"))
    assert usdc.operational_state == sol.operational_state == "operational"


def test_demo_drift_spot_markets_have_weights(local: LocalSolana) -> None:
    program = Pubkey.from_string(DEMO_SOLANA.drift_program)
    usdc = drift.decode_spot_market(_data(local, drift.spot_market_address(program, 0)))
    sol = drift.decode_spot_market(_data(local, drift.spot_market_address(program, 1)))
    assert (usdc.name, usdc.initial_asset_weight, usdc.initial_liability_weight) == (
        "USDC",
        10_000,
        10_000,
    )
    assert (
        sol.name,
        sol.initial_asset_weight,
        sol.maintenance_asset_weight,
        sol.initial_liability_weight,
        sol.maintenance_liability_weight,
        sol.imf_factor,
    ) == ("SOL", 8_000, 9_000, 12_000, 11_000, 1_250)
