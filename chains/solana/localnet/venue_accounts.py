"""The venue accounts of the local Solana chain: Drift markets and users, Kamino reserves and
obligations, MarginFi banks and accounts, written with their real layouts under their real
owner programs (`set_raw_account`), since those programs are not loaded in LiteSVM.

`VenueAccounts` is a part of `LocalSolana` (`chain.py`): its writers need only the ledger.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Literal

from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from chains.solana.decoders import drift, kamino, marginfi
from chains.solana.localnet import layouts
from chains.solana.localnet.ledger import Ledger
from chains.solana.plan import perp_market_address
from chains.solana.spec import SPL_TOKEN_PROGRAM

DRIFT_PROGRAM = "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH"
KAMINO_PROGRAM = "KLend2g3cP87fffoy8q1mQqGKjrxjC8boSyAYavgmjD"
MARGINFI_PROGRAM = "MFv2hWf31Z9kbCa1snEPYctwafyhdvnV7FZnsebVacA"


def as_pubkey(value: Pubkey | str) -> Pubkey:
    return value if isinstance(value, Pubkey) else Pubkey.from_string(value)


def keypair_from_seed(seed: str | bytes) -> Keypair:
    """A deterministic keypair: ed25519 seed = sha256(seed)."""
    raw = seed.encode() if isinstance(seed, str) else seed
    return Keypair.from_seed(hashlib.sha256(raw).digest())


_key = as_pubkey


class VenueAccounts:
    """Writers of raw and venue accounts over the chain's `ledger`."""

    ledger: Ledger

    def set_raw_account(
        self, address: Pubkey | str, data: bytes, owner: Pubkey | str, lamports: int | None = None
    ) -> None:
        """Write any bytes under any owner (for bad-data tests and the layouts below)."""
        rent = self.ledger.svm.minimum_balance_for_rent_exemption(len(data))
        self.ledger.write(
            _key(address),
            Account(lamports if lamports is not None else rent, data, _key(owner), False, 0),
        )

    def set_drift_spot_market(
        self,
        market_index: int,
        mint: Pubkey | str,
        decimals: int,
        *,
        cumulative_deposit_interest: int = 10**10,
        cumulative_borrow_interest: int = 10**10,
        weights: tuple[int, int, int, int] = (10_000, 10_000, 10_000, 10_000),
        imf_factor: int = 0,
        name: str = "",
        oracle: Pubkey | str | None = None,
        oracle_source: str = "Pyth",
        program_id: str = DRIFT_PROGRAM,
    ) -> Pubkey:
        """Write a SpotMarket at its PDA; interest in SPOT_CUMULATIVE_INTEREST_PRECISION (1e10).
        `weights`: (initial asset, maintenance asset, initial liability, maintenance
        liability) in MARGIN_PRECISION (1e4 = 100 %); the default is Drift's quote market's.
        `oracle` / `oracle_source`: the account the market prices from and how Drift reads it
        (a Drift `OracleSource` name; without an oracle the market names the default key).
        May raise: ValueError (unknown oracle source)."""
        program = Pubkey.from_string(program_id)
        address = drift.spot_market_address(program, market_index)
        initial_asset, maintenance_asset, initial_liability, maintenance_liability = weights
        data = drift.encode_spot_market(
            address=address,
            mint=_key(mint),
            market_index=market_index,
            decimals=decimals,
            cumulative_deposit_interest=cumulative_deposit_interest,
            cumulative_borrow_interest=cumulative_borrow_interest,
            name=name,
            initial_asset_weight=initial_asset,
            maintenance_asset_weight=maintenance_asset,
            initial_liability_weight=initial_liability,
            maintenance_liability_weight=maintenance_liability,
            imf_factor=imf_factor,
            oracle=_key(oracle) if oracle is not None else None,
        )
        self.set_raw_account(address, layouts.with_spot_oracle_source(data, oracle_source), program)
        return address

    def set_drift_perp_market(
        self,
        market_index: int,
        oracle: Pubkey | str,
        *,
        oracle_source: str = "PythPull",
        margin_ratios: tuple[int, int] = (500, 300),
        imf_factor: int = 0,
        liquidator_fee: int = 0,
        if_liquidation_fee: int = 0,
        unrealized_pnl_maintenance_asset_weight: int = drift.MARGIN_PRECISION,
        name: str = "",
        program_id: str = DRIFT_PROGRAM,
    ) -> Pubkey:
        """Write an active PerpMarket (real 1,216-byte layout) at its PDA, priced from `oracle`
        read as `oracle_source`. `margin_ratios`: (initial, maintenance) in MARGIN_PRECISION
        (1e4); imf factor and fees in 1e6. May raise: ValueError (unknown oracle source)."""
        program = Pubkey.from_string(program_id)
        address = perp_market_address(program, market_index)
        initial, maintenance = margin_ratios
        data = layouts.encode_drift_perp_market(
            address=address,
            market_index=market_index,
            oracle=_key(oracle),
            oracle_source=oracle_source,
            name=name,
            margin_ratio_initial=initial,
            margin_ratio_maintenance=maintenance,
            imf_factor=imf_factor,
            liquidator_fee=liquidator_fee,
            if_liquidation_fee=if_liquidation_fee,
            unrealized_pnl_maintenance_asset_weight=unrealized_pnl_maintenance_asset_weight,
        )
        self.set_raw_account(address, data, program)
        return address

    def set_drift_user(
        self,
        authority: Pubkey | str,
        *,
        sub_account_id: int = 0,
        spot: tuple[tuple[int, int, Literal["deposit", "borrow"]], ...] = (),
        perp: tuple[tuple[int, int, int, int], ...] = (),
        program_id: str = DRIFT_PROGRAM,
    ) -> Pubkey:
        """Write a User at its PDA (authority, sub account). `spot`: (market_index,
        scaled_balance 1e9, kind); `perp`: (market_index, base 1e9, quote 1e6, quote_entry 1e6)."""
        program = Pubkey.from_string(program_id)
        address = drift.user_address(program, _key(authority), sub_account_id)
        data = drift.encode_user(
            authority=_key(authority), sub_account_id=sub_account_id, spot=spot, perp=perp
        )
        self.set_raw_account(address, data, program)
        return address

    def set_kamino_obligation(
        self,
        owner: Pubkey | str,
        lending_market: Pubkey | str,
        *,
        deposits: tuple[tuple[Pubkey, int, int], ...] = (),
        borrows: tuple[tuple[Pubkey, int, int], ...] = (),
        program_id: str = KAMINO_PROGRAM,
    ) -> Pubkey:
        """Write a vanilla Obligation at its PDA. `deposits`: (reserve, collateral amount,
        market_value_sf); `borrows`: (reserve, borrowed_amount_sf, market_value_sf)."""
        program = Pubkey.from_string(program_id)
        address = kamino.obligation_address(program, _key(owner), _key(lending_market))
        data = kamino.encode_obligation(
            lending_market=_key(lending_market),
            owner=_key(owner),
            deposits=deposits,
            borrows=borrows,
        )
        self.set_raw_account(address, data, program)
        return address

    def set_kamino_reserve(
        self,
        reserve: Pubkey | str,
        lending_market: Pubkey | str,
        liquidity_mint: Pubkey | str,
        mint_decimals: int,
        *,
        available_amount: int,
        borrowed_amount_sf: int = 0,
        collateral_supply: int,
        accumulated_protocol_fees_sf: int = 0,
        accumulated_referrer_fees_sf: int = 0,
        pending_referrer_fees_sf: int = 0,
        collateral_mint: Pubkey | str | None = None,
        token_program: str = SPL_TOKEN_PROGRAM,
        loan_to_value_pct: int = 0,
        liquidation_threshold_pct: int = 0,
        borrow_factor_pct: int = 100,
        market_price_sf: int = 0,
        market_price_updated_ts: int = 0,
        program_id: str = KAMINO_PROGRAM,
    ) -> Pubkey:
        """Write a Reserve (real 8,624-byte layout) at `reserve`, owned by the klend program.

        Exchange rate: (available + borrowed_sf/2^60 - fees_sf/2^60) liquidity base units per
        `collateral_supply` collateral tokens. `collateral_mint` defaults to a key derived from
        the reserve (klend's is a PDA; nothing here reads it). Risk parameters as klend's
        config: LTV <= liquidation threshold <= 100 %, borrow factor >= 100 %; the defaults
        are a reserve that cannot back a borrow. `market_price_sf`: the reserve's own price, USD
        per whole token x 2**60 (0: never refreshed, no price)."""
        reserve_key = _key(reserve)
        collateral = (
            _key(collateral_mint)
            if collateral_mint is not None
            else keypair_from_seed(b"kamino-collateral:" + bytes(reserve_key)).pubkey()
        )
        data = kamino.encode_reserve(
            lending_market=_key(lending_market),
            liquidity_mint=_key(liquidity_mint),
            mint_decimals=mint_decimals,
            available_amount=available_amount,
            borrowed_amount_sf=borrowed_amount_sf,
            collateral_mint=collateral,
            collateral_supply=collateral_supply,
            accumulated_protocol_fees_sf=accumulated_protocol_fees_sf,
            accumulated_referrer_fees_sf=accumulated_referrer_fees_sf,
            pending_referrer_fees_sf=pending_referrer_fees_sf,
            token_program=Pubkey.from_string(token_program),
            loan_to_value_pct=loan_to_value_pct,
            liquidation_threshold_pct=liquidation_threshold_pct,
            borrow_factor_pct=borrow_factor_pct,
        )
        data = layouts.with_reserve_market_price(data, market_price_sf, market_price_updated_ts)
        self.set_raw_account(reserve_key, data, Pubkey.from_string(program_id))
        return reserve_key

    def set_kamino_market_price(
        self, reserve: Pubkey | str, market_price_sf: int, updated_ts: int
    ) -> None:
        """Set an existing Reserve's `market_price_sf` (USD per whole token x 2**60) and its
        `market_price_last_updated_ts`, as klend's refresh does. May raise: KeyError (no such
        account)."""
        key = _key(reserve)
        with self.ledger.lock:
            account = self.ledger.svm.get_account(key)
            if account is None:
                raise KeyError(f"Kamino reserve {reserve} does not exist")
            data = layouts.with_reserve_market_price(
                bytes(account.data), market_price_sf, updated_ts
            )
            self.set_raw_account(key, data, account.owner, account.lamports)

    def set_marginfi_bank(
        self,
        bank: Pubkey | str,
        group: Pubkey | str,
        mint: Pubkey | str,
        mint_decimals: int,
        *,
        asset_share_value: int = marginfi.I80F48_ONE,
        liability_share_value: int = marginfi.I80F48_ONE,
        weights: tuple[Decimal, Decimal, Decimal, Decimal] = (
            Decimal(0),
            Decimal(0),
            Decimal(1),
            Decimal(1),
        ),
        oracle_setup: str = "none",
        oracle_keys: tuple[Pubkey | str, ...] = (),
        program_id: str = MARGINFI_PROGRAM,
    ) -> Pubkey:
        """Write a Bank (real 1,864-byte layout) at `bank`; share values as I80F48 bits
        (value x 2**48): base units per share. `weights`: (asset init, asset maint, liability
        init, liability maint); the default is marginfi's `BankConfig::default()`.
        `oracle_setup` / `oracle_keys`: the bank's price source (e.g. "pyth_push_oracle" with
        the PriceUpdateV2 account first). May raise: ValueError (unknown setup, > 5 keys)."""
        asset_init, asset_maint, liability_init, liability_maint = weights
        data = marginfi.encode_bank(
            mint=_key(mint),
            mint_decimals=mint_decimals,
            group=_key(group),
            asset_share_value=asset_share_value,
            liability_share_value=liability_share_value,
            asset_weight_init=asset_init,
            asset_weight_maint=asset_maint,
            liability_weight_init=liability_init,
            liability_weight_maint=liability_maint,
        )
        data = layouts.with_bank_oracle(data, oracle_setup, tuple(_key(k) for k in oracle_keys))
        self.set_raw_account(bank, data, Pubkey.from_string(program_id))
        return _key(bank)

    def set_marginfi_account(
        self,
        authority: Pubkey | str,
        group: Pubkey | str,
        *,
        balances: tuple[tuple[Pubkey, int, int], ...] = (),
        address: Pubkey | str | None = None,
        account_index: int = 0,
        program_id: str = MARGINFI_PROGRAM,
    ) -> Pubkey:
        """Write a MarginfiAccount (real 2,312-byte layout). At `address` (a keypair account) or,
        without it, at the PDA of (group, authority, account_index). `balances`: (bank,
        asset_shares bits, liability_shares bits), I80F48 bits = shares x 2**48."""
        program = Pubkey.from_string(program_id)
        target = (
            _key(address)
            if address is not None
            else marginfi.account_address(program, _key(group), _key(authority), account_index)
        )
        data = marginfi.encode_account(
            group=_key(group), authority=_key(authority), balances=balances
        )
        self.set_raw_account(target, data, program)
        return target
