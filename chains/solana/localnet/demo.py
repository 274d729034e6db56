"""The demo's Solana world: fixed addresses (from fixed seeds) and `seed_demo_world`.

Addresses are deterministic so that config/devnet.toml can name them. Pyth accounts sit at the
real shard-0 push-oracle addresses of SOL/USD and USDC/USD with the real feed ids; Drift and
Kamino accounts use the real program ids and PDAs.

Venue prices come from the same place as the feeds: the Drift spot and perp markets name the
two Pyth accounts as their oracle (PythPull; PythStableCoinPull for USDC), the MarginFi banks
name them in `oracle_keys[0]` (setup `pyth_push_oracle`), and the Kamino reserves hold the same
price in `market_price_sf`. `set_demo_prices` writes all of it, so a price the demo moves moves
every venue's price too.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from solders.pubkey import Pubkey

from chains.base import EndpointPolicy
from chains.solana.decoders import drift
from chains.solana.localnet.chain import (
    DRIFT_PROGRAM,
    KAMINO_PROGRAM,
    MARGINFI_PROGRAM,
    LocalSolana,
    keypair_from_seed,
)
from chains.solana.plan import perp_market_address
from chains.solana.spec import (
    PYTH_PUSH_ORACLE_PROGRAM,
    SPL_TOKEN_PROGRAM,
    TOKEN_2022_PROGRAM,
    DriftPerpMarket,
    DriftSpotMarket,
    DriftVenue,
    KaminoReserve,
    KaminoVenue,
    MarginfiBank,
    MarginfiVenue,
    PythFeed,
    SolanaChainSpec,
    SplMint,
)

WSOL_MINT = "So11111111111111111111111111111111111111112"
SOL_USD_FEED = "0xef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d"
USDC_USD_FEED = "0xeaa020c61cc479712813461ce153894a96a6c00b21ed0cfc2798d1f9a9e9c94a"
SOL_USD_CENTS = 15_000  # the demo's SOL/USD price: $150
USDC_USD_MICROS = 1_000_000  # the demo's USDC/USD price: $1


def _seeded(name: str) -> str:
    return str(keypair_from_seed(f"xmargin-demo:{name}").pubkey())


@dataclass(frozen=True, slots=True)
class DemoSolana:
    """Every address of the demo world, as base58 strings."""

    genesis_hash: str
    usdc_mint: str  # 6 decimals, SPL Token
    pyusd_mint: str  # 6 decimals, Token-2022
    pyth_program: str
    pyth_sol_usd: str
    pyth_usdc_usd: str
    sol_usd_feed_id: str
    usdc_usd_feed_id: str
    drift_program: str
    drift_spot_usdc: str  # market 0
    drift_spot_sol: str  # market 1
    drift_perp_sol: str  # perp market 0, SOL-PERP
    kamino_program: str
    kamino_lending_market: str
    kamino_reserve_usdc: str
    kamino_reserve_sol: str
    marginfi_program: str
    marginfi_group: str
    marginfi_bank_usdc: str
    marginfi_bank_sol: str
    marginfi_account_bob: str  # a keypair account (found by getProgramAccounts, not derived)
    alice: str  # USDC, PYUSD, SOL, a Drift account
    bob: str  # SOL, USDC, a Kamino obligation


def _demo() -> DemoSolana:
    drift_program = Pubkey.from_string(DRIFT_PROGRAM)
    return DemoSolana(
        genesis_hash="FCTrmGKGCJ2XvpSunv7BBcoojPJGxwaJMWPg3WX4NuQj",  # Ledger.genesis_hash
        usdc_mint=_seeded("usdc"),
        pyusd_mint=_seeded("pyusd"),
        pyth_program=PYTH_PUSH_ORACLE_PROGRAM,
        pyth_sol_usd="7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE",
        pyth_usdc_usd="Dpw1EAVrSB1ibxiDQyTAW6Zip3J4Btk2x4SgApQCeFbX",
        sol_usd_feed_id=SOL_USD_FEED,
        usdc_usd_feed_id=USDC_USD_FEED,
        drift_program=DRIFT_PROGRAM,
        drift_spot_usdc=str(drift.spot_market_address(drift_program, 0)),
        drift_spot_sol=str(drift.spot_market_address(drift_program, 1)),
        drift_perp_sol=str(perp_market_address(drift_program, 0)),
        kamino_program=KAMINO_PROGRAM,
        kamino_lending_market=_seeded("kamino-market"),
        kamino_reserve_usdc=_seeded("kamino-reserve-usdc"),
        kamino_reserve_sol=_seeded("kamino-reserve-sol"),
        marginfi_program=MARGINFI_PROGRAM,
        marginfi_group=_seeded("marginfi-group"),
        marginfi_bank_usdc=_seeded("marginfi-bank-usdc"),
        marginfi_bank_sol=_seeded("marginfi-bank-sol"),
        marginfi_account_bob=_seeded("marginfi-account-bob"),
        alice=_seeded("alice"),
        bob=_seeded("bob"),
    )


DEMO_SOLANA = _demo()


def demo_marginfi_venue() -> MarginfiVenue:
    """The MarginFi venue of the demo world (group, USDC and SOL banks)."""
    demo = DEMO_SOLANA
    return MarginfiVenue(
        program_id=demo.marginfi_program,
        group=demo.marginfi_group,
        banks=(
            MarginfiBank(demo.marginfi_bank_usdc, "USDC", 6),
            MarginfiBank(demo.marginfi_bank_sol, "SOL", 9),
        ),
    )


def demo_spec(
    urls: tuple[str, ...],
    *,
    chain: str = "solana",
    commitment: str = "finalized",
    marginfi: bool = False,
) -> SolanaChainSpec:
    """The adapter spec that reads the demo world (what config/devnet.toml says).

    MarginFi is read only with `marginfi=True`; config/devnet.toml configures it.
    """
    demo = DEMO_SOLANA
    return SolanaChainSpec(
        chain=chain,
        genesis_hash=demo.genesis_hash,
        endpoints=EndpointPolicy(urls=urls, timeout_seconds=5.0, retries=1, backoff_seconds=0.05),
        commitment=commitment,
        mints=(
            SplMint("USDC", demo.usdc_mint, 6, SPL_TOKEN_PROGRAM),
            SplMint("PYUSD", demo.pyusd_mint, 6, TOKEN_2022_PROGRAM),
        ),
        feeds=(
            PythFeed("SOL", demo.pyth_sol_usd, SOL_USD_FEED),
            PythFeed("USDC", demo.pyth_usdc_usd, USDC_USD_FEED),
        ),
        drift=DriftVenue(
            program_id=demo.drift_program,
            spot_markets=(
                DriftSpotMarket(0, "USDC", 6, demo.drift_spot_usdc),
                DriftSpotMarket(1, "SOL", 9, demo.drift_spot_sol),
            ),
            perp_markets=(DriftPerpMarket(0, "SOL"),),
        ),
        kamino=KaminoVenue(
            program_id=demo.kamino_program,
            reserves=(
                KaminoReserve(demo.kamino_reserve_usdc, "USDC", 6),
                KaminoReserve(demo.kamino_reserve_sol, "SOL", 9),
            ),
            lending_markets=(demo.kamino_lending_market,),
        ),
        marginfi=demo_marginfi_venue() if marginfi else None,
    )


def set_demo_prices(
    local: LocalSolana,
    sol_usd_cents: int = SOL_USD_CENTS,
    usdc_usd_micros: int = USDC_USD_MICROS,
) -> None:
    """Write the SOL/USD and USDC/USD prices, published at the current slot: the two
    PriceUpdateV2 accounts (the feeds, and the oracles the Drift markets and MarginFi banks name)
    and the Kamino reserves' own `market_price_sf`. The Kamino reserves must exist (they are
    written by `seed_demo_world`). May raise: KeyError (no reserve)."""
    demo = DEMO_SOLANA
    now = local.block_time()
    local.set_pyth_price(
        demo.pyth_sol_usd,
        SOL_USD_FEED,
        sol_usd_cents * 10**6,  # expo -8
        5_000_000,  # $0.05
        -8,
        now,
        owner=PYTH_PUSH_ORACLE_PROGRAM,
    )
    local.set_pyth_price(
        demo.pyth_usdc_usd,
        USDC_USD_FEED,
        usdc_usd_micros * 100,
        50_000,  # $0.0005
        -8,
        now,
        owner=PYTH_PUSH_ORACLE_PROGRAM,
        verification_level="Partial",
    )
    # klend keeps USD per whole token x 2**60 (refreshed from the reserve's oracle)
    local.set_kamino_market_price(demo.kamino_reserve_sol, (sol_usd_cents << 60) // 100, now)
    local.set_kamino_market_price(demo.kamino_reserve_usdc, (usdc_usd_micros << 60) // 10**6, now)


def set_demo_kamino_reserves(local: LocalSolana, usdc: Pubkey | str) -> None:
    """Write the two demo Kamino reserves with real layouts and non-trivial exchange rates
    (their market price is written by `set_demo_prices`).

    SOL reserve: 1,000 SOL available + 260 SOL borrowed - 10 SOL fees (6 protocol, 3 referrer,
    1 pending) = 1,250 SOL for 1,000 collateral tokens: 1 kSOL = 1.25 SOL.
    USDC reserve: 408,000 + 100,000 USDC for 500,000 collateral tokens: 1 kUSDC = 1.016 USDC.
    Risk parameters are those decoded from real main-market reserves (tests/fixtures/solana/
    real_accounts): SOL LTV 74 %, liquidation threshold 75 %, borrow factor 125 %; USDC 80 % /
    90 % / 100 %.
    """
    demo = DEMO_SOLANA
    local.set_kamino_reserve(
        demo.kamino_reserve_sol,
        demo.kamino_lending_market,
        WSOL_MINT,
        9,
        available_amount=1_000 * 10**9,
        borrowed_amount_sf=(260 * 10**9) << 60,
        accumulated_protocol_fees_sf=(6 * 10**9) << 60,
        accumulated_referrer_fees_sf=(3 * 10**9) << 60,
        pending_referrer_fees_sf=(1 * 10**9) << 60,
        collateral_supply=1_000 * 10**9,
        loan_to_value_pct=74,
        liquidation_threshold_pct=75,
        borrow_factor_pct=125,
    )
    local.set_kamino_reserve(
        demo.kamino_reserve_usdc,
        demo.kamino_lending_market,
        usdc,
        6,
        available_amount=408_000 * 10**6,
        borrowed_amount_sf=(100_000 * 10**6) << 60,
        collateral_supply=500_000 * 10**6,
        loan_to_value_pct=80,
        liquidation_threshold_pct=90,
    )


def set_demo_marginfi(local: LocalSolana, usdc: Pubkey | str) -> None:
    """The demo MarginFi banks and bob's keypair MarginfiAccount.

    Share values are exact in I80F48 (binary fractions) so the demo figures are round.
    USDC bank: 1 share = 1.0625 USDC deposited, 1.125 USDC owed. SOL bank: 1 share = 1 SOL
    deposited, 1.25 SOL owed. bob: 2,000 USDC-bank asset shares = 2,125 USDC deposit, 4 SOL-bank
    liability shares = 5 SOL debt. Weights (asset init / maint, liability init / maint), binary
    fractions near real mainnet banks' (USDT 1 / 1 / 1.25 / 1.1, JitoSOL 0.65 / 0.8 / 1.3 /
    1.2): USDC 1 / 1 / 1.25 / 1.125, SOL 0.625 / 0.75 / 1.25 / 1.125. Both banks price from the
    demo Pyth account of their asset (`pyth_push_oracle`, the PriceUpdateV2 in `oracle_keys[0]`).
    """
    demo = DEMO_SOLANA
    one = 1 << 48  # I80F48 1.0
    local.set_marginfi_bank(
        demo.marginfi_bank_usdc,
        demo.marginfi_group,
        usdc,
        6,
        asset_share_value=one * 17 // 16,
        liability_share_value=one * 9 // 8,
        weights=(Decimal(1), Decimal(1), Decimal("1.25"), Decimal("1.125")),
        oracle_setup="pyth_push_oracle",
        oracle_keys=(demo.pyth_usdc_usd,),
    )
    local.set_marginfi_bank(
        demo.marginfi_bank_sol,
        demo.marginfi_group,
        WSOL_MINT,
        9,
        asset_share_value=one,
        liability_share_value=one * 5 // 4,
        weights=(Decimal("0.625"), Decimal("0.75"), Decimal("1.25"), Decimal("1.125")),
        oracle_setup="pyth_push_oracle",
        oracle_keys=(demo.pyth_sol_usd,),
    )
    local.set_marginfi_account(
        demo.bob,
        demo.marginfi_group,
        address=demo.marginfi_account_bob,
        balances=(
            (Pubkey.from_string(demo.marginfi_bank_usdc), (2_000 * 10**6) << 48, 0),
            (Pubkey.from_string(demo.marginfi_bank_sol), 0, (4 * 10**9) << 48),
        ),
    )


def seed_demo_world(local: LocalSolana) -> None:
    """Create the demo mints, balances, markets, positions and prices, then finalize them.

    alice: 10 SOL, 25,000 USDC, 1,000 PYUSD; Drift: 5,000 USDC deposit, 2 SOL borrow, long
    10 SOL-PERP at $140. bob: 50 SOL, 500 USDC; Kamino: 20 SOL collateral (16 kSOL collateral
    tokens at 1.25), 1,000 USDC borrowed; MarginFi (read with `demo_spec(marginfi=True)`): 2,125
    USDC deposit, 5 SOL debt. Prices: SOL $150, USDC $1, on the feeds and at every venue.
    May raise: LocalChainError.
    """
    demo = DEMO_SOLANA
    usdc = local.create_mint(6, SPL_TOKEN_PROGRAM, seed="xmargin-demo:usdc")
    pyusd = local.create_mint(6, TOKEN_2022_PROGRAM, seed="xmargin-demo:pyusd")
    local.airdrop(demo.alice, 10 * 10**9)
    local.airdrop(demo.bob, 50 * 10**9)
    local.mint_to(demo.alice, usdc, 25_000 * 10**6)
    local.mint_to(demo.alice, pyusd, 1_000 * 10**6)
    local.mint_to(demo.bob, usdc, 500 * 10**6)
    local.set_drift_spot_market(
        0,
        usdc,
        6,
        cumulative_deposit_interest=10**10,
        name="USDC",
        oracle=demo.pyth_usdc_usd,
        oracle_source="PythStableCoinPull",
    )
    local.set_drift_spot_market(
        1,
        WSOL_MINT,
        9,
        cumulative_borrow_interest=10**10,
        # the weights and imf factor decoded from a real SOL spot market (1e4 / 1e6 precision)
        weights=(8_000, 9_000, 12_000, 11_000),
        imf_factor=1_250,
        name="SOL",
        oracle=demo.pyth_sol_usd,
        oracle_source="PythPull",
    )
    # the margin ratios, imf factor and fees decoded from the real SOL-PERP market
    local.set_drift_perp_market(
        0,
        demo.pyth_sol_usd,
        oracle_source="PythPull",
        margin_ratios=(500, 300),
        imf_factor=50,
        liquidator_fee=7_500,
        if_liquidation_fee=7_500,
        name="SOL-PERP",
    )
    local.set_drift_user(
        demo.alice,
        spot=((0, 5_000 * 10**9, "deposit"), (1, 2 * 10**9, "borrow")),  # scaled: 1e9 precision
        perp=((0, 10 * 10**9, -1_400 * 10**6, -1_400 * 10**6),),
    )
    market = Pubkey.from_string(demo.kamino_lending_market)
    set_demo_kamino_reserves(local, usdc)
    set_demo_marginfi(local, usdc)
    local.set_kamino_obligation(
        demo.bob,
        market,
        # 16 kSOL collateral tokens at 1.25 SOL each (see set_demo_kamino_reserves) = 20 SOL
        deposits=((Pubkey.from_string(demo.kamino_reserve_sol), 16 * 10**9, 3_000 << 60),),
        borrows=(
            (Pubkey.from_string(demo.kamino_reserve_usdc), (1_000 * 10**6) << 60, 1_000 << 60),
        ),
    )
    set_demo_prices(local)
    local.finalize()
