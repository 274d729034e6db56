"""Which accounts one Solana snapshot reads, and why: the read plan.

Every account the snapshot needs (wallets for native SOL, associated token accounts per token
program, discovered token accounts, Pyth feeds, Drift users, spot and perp markets, Kamino
obligations and reserves, MarginFi accounts and banks, and the oracle accounts those markets and
banks price from) goes into one ordered, de-duplicated key list, read with
`getMultipleAccounts`.

The oracles a venue prices from are named inside its market and bank accounts, so they are only
known once those are read: the adapter passes the ones it has seen before as `venue_oracles`,
and when a read names others it adds them (`Role("venue_oracle")`) and reads the whole list
again, so that every account still comes from one pass at one slot.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from solders.pubkey import Pubkey

from chains.base import Address, LineIssue
from chains.solana.decoders import drift, kamino, marginfi
from chains.solana.decoders.spl_token import associated_token_address
from chains.solana.spec import (
    DriftPerpMarket,
    DriftSpotMarket,
    KaminoReserve,
    MarginfiBank,
    PythFeed,
    SolanaChainSpec,
    SplMint,
)


@dataclass(frozen=True, slots=True)
class Role:
    """Why an account is read. `kind` is one of: wallet, ata, token, feed, drift_market,
    drift_perp_market, drift_user, kamino, kamino_reserve, marginfi, marginfi_bank,
    venue_oracle."""

    kind: str
    wallet: str | None = None
    mint: SplMint | None = None
    feed: PythFeed | None = None
    drift_market: DriftSpotMarket | None = None
    sub_account_id: int = 0
    lending_market: str | None = None
    kamino_reserve: KaminoReserve | None = None
    marginfi_bank: MarginfiBank | None = None
    drift_perp: DriftPerpMarket | None = None


@dataclass(slots=True)
class ReadPlan:
    wallets: list[tuple[str, Pubkey]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    roles: dict[str, Role] = field(default_factory=dict)
    issues: list[LineIssue] = field(default_factory=list)
    mints_by_address: dict[str, SplMint] = field(default_factory=dict)
    reserves: dict[str, KaminoReserve] = field(default_factory=dict)
    token_programs: tuple[str, ...] = ()
    banks: dict[str, MarginfiBank] = field(default_factory=dict)
    # Further assets priced by an account already planned as a feed (e.g. ETH and WETH).
    shared_feeds: dict[str, list[PythFeed]] = field(default_factory=dict)
    # (program, group) when MarginFi accounts are to be discovered with getProgramAccounts
    marginfi_discovery: tuple[str, str] | None = None

    def add(self, key: Pubkey | str, role: Role) -> None:
        name = str(key)
        if name not in self.roles:
            self.roles[name] = role
            self.keys.append(name)


def _parse(value: str, what: str, issues: list[LineIssue]) -> Pubkey | None:
    try:
        return Pubkey.from_string(value)
    except ValueError:
        issues.append(LineIssue(value, f"{what} {value!r} is not a base58 Solana address"))
        return None


def perp_market_address(program_id: Pubkey, market_index: int) -> Pubkey:
    """The Drift PerpMarket PDA: seeds ["perp_market", market_index u16 LE]."""
    address, _bump = Pubkey.find_program_address(
        [b"perp_market", struct.pack("<H", market_index)], program_id
    )
    return address


def build_plan(
    spec: SolanaChainSpec, wallets: Sequence[Address], venue_oracles: Sequence[str] = ()
) -> ReadPlan:
    """The read plan for `wallets`; bad addresses become issues, never exceptions.

    `venue_oracles`: oracle accounts venue markets and banks were seen to price from (read in
    the same pass, see the module docstring)."""
    plan = ReadPlan()
    seen: set[str] = set()
    for wallet in wallets:
        key = _parse(wallet, "wallet", plan.issues)
        if key is not None and str(key) not in seen:
            seen.add(str(key))
            plan.wallets.append((str(key), key))
    mints: list[tuple[SplMint, Pubkey, Pubkey]] = []
    for mint in spec.mints:
        mint_key = _parse(mint.mint, f"mint of {mint.asset}", plan.issues)
        program_key = _parse(mint.token_program, f"token program of {mint.asset}", plan.issues)
        if mint_key is not None and program_key is not None:
            mints.append((mint, mint_key, program_key))
            plan.mints_by_address[str(mint_key)] = mint
    plan.token_programs = tuple(sorted({mint.token_program for mint, _m, _p in mints}))
    for name, key in plan.wallets:
        if spec.native_balances:
            plan.add(key, Role("wallet", wallet=name))
        for mint, mint_key, program_key in mints:
            plan.add(associated_token_address(key, mint_key, program_key), Role("ata", name, mint))
    for feed in spec.feeds:
        feed_key = _parse(feed.account, f"Pyth account of {feed.asset}", plan.issues)
        if feed_key is None:
            continue
        planned = plan.roles.get(str(feed_key))
        if planned is not None and planned.kind == "feed":
            plan.shared_feeds.setdefault(str(feed_key), []).append(feed)
        else:
            plan.add(feed_key, Role("feed", feed=feed))
    if spec.drift is not None:
        program = _parse(spec.drift.program_id, "Drift program", plan.issues)
        for market in spec.drift.spot_markets:
            market_key = _parse(market.account, f"Drift spot market {market.asset}", plan.issues)
            if market_key is not None:
                plan.add(market_key, Role("drift_market", drift_market=market))
        if program is not None:
            for perp in spec.drift.perp_markets:
                # Read in the same pass: the venue view needs its margin ratios and oracle.
                address = perp_market_address(program, perp.market_index)
                plan.add(address, Role("drift_perp_market", drift_perp=perp))
            for name, key in plan.wallets:
                for sub in spec.drift.sub_account_ids:
                    user = drift.user_address(program, key, sub)
                    plan.add(user, Role("drift_user", wallet=name, sub_account_id=sub))
    if spec.kamino is not None:
        program = _parse(spec.kamino.program_id, "Kamino program", plan.issues)
        plan.reserves = {reserve.reserve: reserve for reserve in spec.kamino.reserves}
        for reserve in spec.kamino.reserves:
            # Read in the same pass: deposits are collateral tokens, valued through the
            # reserve's exchange rate at this slot.
            reserve_key = _parse(reserve.reserve, f"Kamino reserve {reserve.asset}", plan.issues)
            if reserve_key is not None:
                plan.add(reserve_key, Role("kamino_reserve", kamino_reserve=reserve))
        lending_markets = [
            (name, _parse(name, "Kamino lending market", plan.issues))
            for name in spec.kamino.lending_markets
        ]
        if program is not None:
            for name, key in plan.wallets:
                for market_name, market_key in lending_markets:
                    if market_key is None:
                        continue
                    obligation = kamino.obligation_address(program, key, market_key)
                    plan.add(obligation, Role("kamino", wallet=name, lending_market=market_name))
    if spec.marginfi is not None:
        _plan_marginfi(spec, plan)
    for oracle in venue_oracles:
        plan.add(oracle, Role("venue_oracle"))
    return plan


def _plan_marginfi(spec: SolanaChainSpec, plan: ReadPlan) -> None:
    venue = spec.marginfi
    assert venue is not None
    program = _parse(venue.program_id, "MarginFi program", plan.issues)
    group = _parse(venue.group, "MarginFi group", plan.issues)
    plan.banks = {bank.bank: bank for bank in venue.banks}
    for bank in venue.banks:
        # Read in the same pass: balances are shares, valued with the bank's share values.
        bank_key = _parse(bank.bank, f"MarginFi bank {bank.asset}", plan.issues)
        if bank_key is not None:
            plan.add(bank_key, Role("marginfi_bank", marginfi_bank=bank))
    if program is None or group is None:
        return
    for name, key in plan.wallets:
        for index in venue.account_indexes:
            account = marginfi.account_address(program, group, key, index)
            plan.add(account, Role("marginfi", wallet=name))
    if venue.discover_accounts and plan.wallets:
        plan.marginfi_discovery = (str(program), str(group))
