"""Turning the raw accounts of one read into snapshot lines: balances, positions, prices.

A bad account (wrong owner program, size, discriminator, unknown mint or market) becomes a
`LineIssue` naming the account and its line is skipped; nothing else is lost. A price that
fails a check is a `PriceObservation(valid=False)` with the reason; when the cause is the price
account itself (missing, wrong owner, undecodable, another feed) it is also a `LineIssue`.
Kamino deposits are collateral tokens, converted to liquidity units with their reserve read in
the same pass; without a readable reserve the deposit line is skipped, never valued 1:1.

Each Drift user, Kamino obligation and MarginFi account read also becomes a `VenueAccount`
(`chains.solana.venues`): the venue's own parameters and prices from the same pass. Accounts
read only for the venue view (Drift perp markets, venue oracles) that are missing or
unreadable say so in that venue account's `problem` or as a missing venue price, not as line
issues: the lines do not depend on them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TypeVar

from chains.base import (
    Address,
    LineIssue,
    Position,
    PriceObservation,
    TokenBalance,
    VenueAccount,
)
from chains.solana import venues
from chains.solana.decoders import AccountDecodeError, drift, kamino, marginfi, pyth
from chains.solana.decoders.spl_token import decode_token_account
from chains.solana.plan import ReadPlan, Role
from chains.solana.spec import SolanaChainSpec

NATIVE_DECIMALS = 9
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawAccount:
    owner: str
    lamports: int
    data: bytes


@dataclass(slots=True)
class Lines:
    balances: list[TokenBalance] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    prices: list[PriceObservation] = field(default_factory=list)
    issues: list[LineIssue] = field(default_factory=list)
    venue_accounts: list[VenueAccount] = field(default_factory=list)


def _venue_read(
    key: str, name: str, account: RawAccount | None, owner: str, read: Callable[[bytes], T]
) -> T | str:
    """`read(account.data)`, or why it could not be had (no issue: see the module docstring)."""
    if account is None:
        return f"{name} {key}: account not found"
    if account.owner != owner:
        return f"{name} {key}: owned by {account.owner}, not the program"
    try:
        return read(account.data)
    except AccountDecodeError as error:
        return f"{name} {key}: {error}"


def _oracle_read(account: RawAccount | None, drift_program: str | None) -> venues.OraclePrice | str:
    if account is None:
        return "oracle account not found"
    try:
        return venues.read_oracle(account, drift_program)
    except AccountDecodeError as error:
        return str(error)


def _decoded(
    key: str,
    name: str,
    account: RawAccount | None,
    owner: str,
    decode: Callable[[bytes], T],
    lines: Lines,
) -> T | None:
    """`decode(account.data)` when the account exists and `owner` owns it; otherwise None, with
    an issue naming the account and what was wrong."""
    if account is None:
        lines.issues.append(LineIssue(key, f"{name}: account not found"))
        return None
    if account.owner != owner:
        lines.issues.append(LineIssue(key, f"{name} owned by {account.owner}, not the program"))
        return None
    try:
        return decode(account.data)
    except AccountDecodeError as error:
        lines.issues.append(LineIssue(key, f"{name}: {error}"))
        return None


def build_lines(
    spec: SolanaChainSpec,
    plan: ReadPlan,
    accounts: dict[str, RawAccount | None],
    block_time: int,
) -> Lines:
    """Decode every planned account into lines (pure; no I/O)."""
    lines = Lines(issues=list(plan.issues))
    markets: dict[int, drift.DriftSpotMarketState] = {}
    drift_users: list[tuple[str, Role, RawAccount]] = []
    reserves: dict[str, kamino.KaminoReserveState] = {}
    obligations: list[tuple[str, Role, RawAccount]] = []
    wrong_units: set[str] = set()  # reserves whose mint decimals differ from the config
    banks: dict[str, marginfi.MarginfiBankState] = {}
    marginfi_accounts: list[tuple[str, Role, RawAccount]] = []
    drift_program = spec.drift.program_id if spec.drift is not None else None
    spot_reads: dict[int, venues.Read[venues.DriftSpotRead]] = {}
    perp_reads: dict[int, venues.Read[venues.DriftPerpRead]] = {}
    reserve_reads: dict[str, venues.Read[venues.KaminoReserveRead]] = {}
    bank_reads: dict[str, venues.Read[marginfi.MarginfiBankState]] = {}
    oracles: dict[str, venues.Read[venues.OraclePrice]] = {}
    for key in plan.keys:
        role = plan.roles[key]
        account = accounts.get(key)
        if role.kind in ("feed", "venue_oracle"):
            oracles[key] = _oracle_read(account, drift_program)
        if role.kind == "wallet":
            lines.balances.append(
                TokenBalance(
                    account=Address(key),
                    asset=spec.native_asset,
                    amount_raw=account.lamports if account is not None else 0,
                    decimals=NATIVE_DECIMALS,
                )
            )
        elif role.kind in ("ata", "token"):
            _token_line(plan, key, role, account, lines)
        elif role.kind == "feed":
            price = _price(key, role, account, block_time, lines)
            lines.prices.append(price)
            for shared in plan.shared_feeds.get(key, ()):
                lines.prices.append(replace(price, asset=shared.asset))
        elif role.kind == "drift_market":
            spot_reads[_configured_index(role)] = _drift_spot_read(spec, key, role, account)
            if account is None:
                lines.issues.append(LineIssue(key, "Drift spot market account not found"))
                continue
            market = _drift_market(spec, key, role, account, lines)
            if market is not None:
                markets[market.market_index] = market
        elif role.kind == "drift_perp_market" and role.drift_perp is not None:
            assert drift_program is not None
            perp_reads[role.drift_perp.market_index] = _venue_read(
                key, "Drift perp market", account, drift_program, venues.read_drift_perp_market
            )
        elif role.kind == "drift_user" and account is not None:
            drift_users.append((key, role, account))
        elif role.kind == "kamino" and account is not None:
            obligations.append((key, role, account))
        elif role.kind == "kamino_reserve":
            reserve = _kamino_reserve(spec, key, role, account, lines, wrong_units)
            if reserve is not None:
                reserves[key] = reserve
            assert spec.kamino is not None
            reserve_read = _venue_read(
                key, "Kamino reserve", account, spec.kamino.program_id, venues.read_kamino_reserve
            )
            if reserve is None and not isinstance(reserve_read, str):
                reserve_read = f"Kamino reserve {key}: its decimals differ from the config"
            reserve_reads[key] = reserve_read
        elif role.kind == "marginfi_bank":
            bank = _marginfi_bank(spec, key, role, account, lines)
            if bank is not None:
                banks[key] = bank
            assert spec.marginfi is not None
            bank_read = _venue_read(
                key, "MarginFi bank", account, spec.marginfi.program_id, marginfi.decode_bank
            )
            if bank is None and not isinstance(bank_read, str):
                bank_read = f"MarginFi bank {key}: its group or decimals differ from the config"
            bank_reads[key] = bank_read
        elif role.kind == "marginfi" and account is not None:
            marginfi_accounts.append((key, role, account))
    for key, role, account in drift_users:
        user = _drift_lines(spec, key, role, account, markets, lines)
        if user is not None and spec.drift is not None:
            lines.venue_accounts.append(
                venues.drift_venue_account(
                    wallet=role.wallet or "",
                    user_key=key,
                    user=user,
                    spot_assets={m.market_index: m.asset for m in spec.drift.spot_markets},
                    perp_assets={m.market_index: m.asset for m in spec.drift.perp_markets},
                    spot_markets=spot_reads,
                    perp_markets=perp_reads,
                    oracles=oracles,
                )
            )
    for key, role, account in obligations:
        obligation = _kamino_lines(spec, plan, key, role, account, reserves, wrong_units, lines)
        if obligation is not None:
            lines.venue_accounts.append(
                venues.kamino_venue_account(
                    wallet=role.wallet or "",
                    obligation_key=key,
                    obligation=obligation,
                    reserve_assets={
                        address: (r.asset, r.decimals) for address, r in plan.reserves.items()
                    },
                    reserves=reserve_reads,
                )
            )
    for key, role, account in marginfi_accounts:
        state = _marginfi_lines(spec, plan, key, role, account, banks, lines)
        if state is not None:
            lines.venue_accounts.append(
                venues.marginfi_venue_account(
                    wallet=role.wallet or "",
                    account_key=key,
                    account=state,
                    bank_assets={
                        address: (b.asset, b.decimals) for address, b in plan.banks.items()
                    },
                    banks=bank_reads,
                    oracles=oracles,
                )
            )
    return lines


def _configured_index(role: Role) -> int:
    assert role.drift_market is not None
    return role.drift_market.market_index


def _drift_spot_read(
    spec: SolanaChainSpec, key: str, role: Role, account: RawAccount | None
) -> venues.Read[venues.DriftSpotRead]:
    """The spot market for the venue view, or why not (also when it is not the configured
    market)."""
    assert spec.drift is not None and role.drift_market is not None
    read = _venue_read(
        key, "Drift spot market", account, spec.drift.program_id, venues.read_drift_spot_market
    )
    configured = role.drift_market
    if not isinstance(read, str) and (
        read.state.market_index != configured.market_index
        or read.state.decimals != configured.decimals
    ):
        return f"Drift spot market {key}: index or decimals differ from the config"
    return read


def _token_line(
    plan: ReadPlan, key: str, role: Role, account: RawAccount | None, lines: Lines
) -> None:
    wallet = role.wallet or ""
    if account is None:
        if role.kind == "ata" and role.mint is not None:
            lines.balances.append(
                TokenBalance(
                    account=Address(wallet),
                    asset=role.mint.asset,
                    amount_raw=0,
                    decimals=role.mint.decimals,
                    token_address=role.mint.mint,
                    holder=key,
                )
            )
        return
    try:
        state = decode_token_account(account.data)
    except AccountDecodeError as error:
        lines.issues.append(LineIssue(key, f"token account of {wallet}: {error}; skipped"))
        return
    mint = plan.mints_by_address.get(state.mint)
    if mint is None or (role.mint is not None and mint is not role.mint):
        lines.issues.append(
            LineIssue(key, f"token account of {wallet} holds mint {state.mint}, not configured")
        )
        return
    if account.owner != mint.token_program:
        lines.issues.append(
            LineIssue(
                key,
                f"token account of {wallet} is owned by {account.owner}, not {mint.token_program}",
            )
        )
        return
    if state.owner != wallet:
        lines.issues.append(LineIssue(key, f"token account owner {state.owner} is not {wallet}"))
        return
    lines.balances.append(
        TokenBalance(
            account=Address(wallet),
            asset=mint.asset,
            amount_raw=state.amount,
            decimals=mint.decimals,
            token_address=mint.mint,
            holder=key,
        )
    )


def _invalid(
    feed_asset: str, key: str, reason: str, update: pyth.PriceUpdateV2 | None = None
) -> PriceObservation:
    return PriceObservation(
        asset=feed_asset,
        source=f"pyth:{key}",
        price=update.price_decimal if update is not None else Decimal(0),
        conf=update.conf_decimal if update is not None else Decimal(0),
        publish_time=update.publish_time if update is not None else 0,
        valid=False,
        invalid_reason=reason,
    )


def _price(
    key: str, role: Role, account: RawAccount | None, block_time: int, lines: Lines
) -> PriceObservation:
    """The feed's price, valid or not. A bad account (missing, legacy format, wrong owner, not
    decodable, another feed) is also a `LineIssue` naming it, so that the poll records it; a
    price that is only too uncertain or too old is not an account problem and is not."""
    feed = role.feed
    assert feed is not None  # the plan sets it for every feed role

    def bad_account(reason: str, update: pyth.PriceUpdateV2 | None = None) -> PriceObservation:
        lines.issues.append(LineIssue(key, f"Pyth price of {feed.asset}: {reason}"))
        return _invalid(feed.asset, key, reason, update)

    if account is None:
        return bad_account("price account not found")
    if pyth.is_legacy_price_account(account.data):
        return bad_account(
            "legacy Pyth price account (no feed id to verify); configure a PriceUpdateV2 account"
        )
    if account.owner not in feed.owners:
        return bad_account(f"owner {account.owner} is not a Pyth receiver program")
    try:
        update = pyth.decode_price_update_v2(account.data)
    except AccountDecodeError as error:
        return bad_account(str(error))
    if update.feed_id.lower() != feed.feed_id.lower():
        return bad_account(f"feed id {update.feed_id} is not {feed.feed_id}", update)
    if update.price <= 0:
        return _invalid(feed.asset, key, f"non-positive price {update.price}", update)
    ratio = Decimal(update.conf) / Decimal(update.price)
    if ratio > feed.max_conf_ratio:
        return _invalid(
            feed.asset,
            key,
            f"conf/price {ratio:.4f} exceeds {feed.max_conf_ratio}",
            update,
        )
    age = block_time - update.publish_time
    if age > feed.max_age_seconds:
        return _invalid(
            feed.asset,
            key,
            f"published {age}s before the slot (max {feed.max_age_seconds}s)",
            update,
        )
    return PriceObservation(
        asset=feed.asset,
        source=f"pyth:{key}",
        price=update.price_decimal,
        conf=update.conf_decimal,
        publish_time=update.publish_time,
    )


def _drift_market(
    spec: SolanaChainSpec, key: str, role: Role, account: RawAccount, lines: Lines
) -> drift.DriftSpotMarketState | None:
    configured = role.drift_market
    assert configured is not None and spec.drift is not None
    market = _decoded(
        key, "Drift spot market", account, spec.drift.program_id, drift.decode_spot_market, lines
    )
    if market is None:
        return None
    if market.market_index != configured.market_index or market.decimals != configured.decimals:
        lines.issues.append(
            LineIssue(
                key,
                f"Drift spot market is index {market.market_index} with {market.decimals} dp, "
                f"configured {configured.market_index} with {configured.decimals} dp",
            )
        )
        return None
    return market


def _drift_lines(
    spec: SolanaChainSpec,
    key: str,
    role: Role,
    account: RawAccount,
    markets: dict[int, drift.DriftSpotMarketState],
    lines: Lines,
) -> drift.DriftUser | None:
    """The user's lines; returns the decoded user (None when it is not the wallet's)."""
    venue = spec.drift
    assert venue is not None
    wallet = role.wallet or ""
    user = _decoded(
        key, f"Drift user of {wallet}", account, venue.program_id, drift.decode_user, lines
    )
    if user is None:
        return None
    if user.authority != wallet:
        lines.issues.append(LineIssue(key, f"Drift user authority {user.authority} != {wallet}"))
        return None
    spot_assets = {market.market_index: market for market in venue.spot_markets}
    perp_assets = {market.market_index: market for market in venue.perp_markets}
    for spot in user.spot_positions:
        configured = spot_assets.get(spot.market_index)
        market = markets.get(spot.market_index)
        if configured is None or market is None:
            lines.issues.append(
                LineIssue(key, f"Drift spot market {spot.market_index} is not configured/readable")
            )
            continue
        amount = drift.spot_token_amount(spot, market)
        lines.positions.append(
            Position(
                account=Address(wallet),
                venue="drift",
                asset=configured.asset,
                kind=spot.balance_type,
                amount_raw=amount if spot.balance_type == "deposit" else -amount,
                decimals=market.decimals,
                market=f"spot:{spot.market_index}",
            )
        )
    for perp in user.perp_positions:
        perp_market = perp_assets.get(perp.market_index)
        if perp_market is None:
            lines.issues.append(LineIssue(key, f"Drift perp market {perp.market_index} unknown"))
            continue
        if perp.base_asset_amount == 0:
            continue  # only unsettled quote left: no exposure to price
        # entry = |quote entry| (1e6) / |base| (1e9), in quote units per base unit
        entry = Decimal(-perp.quote_entry_amount) * 1000 / Decimal(perp.base_asset_amount)
        lines.positions.append(
            Position(
                account=Address(wallet),
                venue="drift",
                asset=perp_market.asset,
                kind="perp",
                amount_raw=perp.base_asset_amount,
                decimals=drift.BASE_PRECISION_DECIMALS,
                entry_price=entry,
                market=f"perp:{perp.market_index}",
            )
        )
    return user


def _kamino_reserve(
    spec: SolanaChainSpec,
    key: str,
    role: Role,
    account: RawAccount | None,
    lines: Lines,
    wrong_units: set[str],
) -> kamino.KaminoReserveState | None:
    """The decoded reserve, or None with an issue naming it (its deposits are then skipped)."""
    venue, configured = spec.kamino, role.kamino_reserve
    assert venue is not None and configured is not None
    name = f"Kamino reserve {configured.asset}"
    reserve = _decoded(key, name, account, venue.program_id, kamino.decode_reserve, lines)
    if reserve is None:
        return None
    if reserve.mint_decimals != configured.decimals:
        wrong_units.add(key)
        lines.issues.append(
            LineIssue(
                key,
                f"{name} has {reserve.mint_decimals} dp, configured {configured.decimals}",
            )
        )
        return None
    return reserve


def _kamino_lines(
    spec: SolanaChainSpec,
    plan: ReadPlan,
    key: str,
    role: Role,
    account: RawAccount,
    reserves: dict[str, kamino.KaminoReserveState],
    wrong_units: set[str],
    lines: Lines,
) -> kamino.KaminoObligation | None:
    """The obligation's lines; returns the decoded obligation (None when not the wallet's)."""
    venue = spec.kamino
    assert venue is not None
    wallet = role.wallet or ""
    name = f"Kamino obligation of {wallet}"
    obligation = _decoded(key, name, account, venue.program_id, kamino.decode_obligation, lines)
    if obligation is None:
        return None
    if obligation.owner != wallet:
        lines.issues.append(LineIssue(key, f"Kamino obligation owner {obligation.owner}"))
        return None
    for deposit in obligation.deposits:
        configured = plan.reserves.get(deposit.reserve)
        if configured is None:
            lines.issues.append(LineIssue(key, f"Kamino reserve {deposit.reserve} unknown"))
            continue
        state = reserves.get(deposit.reserve)
        if state is None:
            # A collateral-token amount is not a liquidity amount: never value it as one.
            lines.issues.append(
                LineIssue(
                    key,
                    f"Kamino {configured.asset} deposit of {wallet} skipped: reserve "
                    f"{deposit.reserve} could not be read",
                )
            )
            continue
        if state.lending_market != obligation.lending_market:
            lines.issues.append(
                LineIssue(
                    key,
                    f"Kamino reserve {deposit.reserve} belongs to market {state.lending_market}, "
                    f"not the obligation's {obligation.lending_market}",
                )
            )
            continue
        lines.positions.append(
            Position(
                account=Address(wallet),
                venue="kamino",
                asset=configured.asset,
                kind="deposit",
                amount_raw=state.collateral_to_liquidity(deposit.deposited_amount),
                decimals=configured.decimals,
                market=deposit.reserve,
            )
        )
    for borrow in obligation.borrows:
        configured = plan.reserves.get(borrow.reserve)
        if configured is None:
            lines.issues.append(LineIssue(key, f"Kamino reserve {borrow.reserve} unknown"))
            continue
        if borrow.reserve in wrong_units:
            lines.issues.append(
                LineIssue(
                    key,
                    f"Kamino {configured.asset} borrow of {wallet} skipped: reserve "
                    f"{borrow.reserve} decimals differ from the config",
                )
            )
            continue
        # borrowed_amount_sf is already in liquidity base units: the line does not need the
        # reserve account, so a debt is kept even when its reserve could not be read.
        lines.positions.append(
            Position(
                account=Address(wallet),
                venue="kamino",
                asset=configured.asset,
                kind="borrow",
                amount_raw=-borrow.borrowed_amount_raw,
                decimals=configured.decimals,
                market=borrow.reserve,
            )
        )
    return obligation


def _marginfi_bank(
    spec: SolanaChainSpec, key: str, role: Role, account: RawAccount | None, lines: Lines
) -> marginfi.MarginfiBankState | None:
    """The decoded bank, or None with an issue naming it (its balances are then skipped)."""
    venue, configured = spec.marginfi, role.marginfi_bank
    assert venue is not None and configured is not None
    name = f"MarginFi bank {configured.asset}"
    bank = _decoded(key, name, account, venue.program_id, marginfi.decode_bank, lines)
    if bank is None:
        return None
    if bank.group != venue.group:
        lines.issues.append(LineIssue(key, f"{name} belongs to group {bank.group}"))
        return None
    if bank.mint_decimals != configured.decimals:
        lines.issues.append(
            LineIssue(key, f"{name} has {bank.mint_decimals} dp, configured {configured.decimals}")
        )
        return None
    return bank


def _marginfi_lines(
    spec: SolanaChainSpec,
    plan: ReadPlan,
    key: str,
    role: Role,
    account: RawAccount,
    banks: dict[str, marginfi.MarginfiBankState],
    lines: Lines,
) -> marginfi.MarginfiAccountState | None:
    """The account's lines; returns the decoded account (None when it is not the wallet's)."""
    venue = spec.marginfi
    assert venue is not None
    wallet = role.wallet or ""
    name = f"MarginFi account of {wallet}"
    state = _decoded(key, name, account, venue.program_id, marginfi.decode_account, lines)
    if state is None:
        return None
    if state.authority != wallet or state.group != venue.group:
        lines.issues.append(
            LineIssue(
                key,
                f"MarginFi account authority {state.authority} / group {state.group} is not "
                f"{wallet} / {venue.group}",
            )
        )
        return None
    for balance in state.balances:
        configured = plan.banks.get(balance.bank)
        if configured is None:
            lines.issues.append(LineIssue(key, f"MarginFi bank {balance.bank} unknown"))
            continue
        bank = banks.get(balance.bank)
        if bank is None:
            # Shares are not tokens: without the bank's share values neither side can be valued.
            lines.issues.append(
                LineIssue(
                    key,
                    f"MarginFi {configured.asset} balance of {wallet} skipped: bank "
                    f"{balance.bank} could not be read",
                )
            )
            continue
        deposit = bank.asset_amount(balance.asset_shares)
        debt = bank.liability_amount(balance.liability_shares)
        if deposit:
            lines.positions.append(
                Position(
                    account=Address(wallet),
                    venue="marginfi",
                    asset=configured.asset,
                    kind="deposit",
                    amount_raw=deposit,
                    decimals=configured.decimals,
                    market=balance.bank,
                )
            )
        if debt:
            lines.positions.append(
                Position(
                    account=Address(wallet),
                    venue="marginfi",
                    asset=configured.asset,
                    kind="borrow",
                    amount_raw=-debt,
                    decimals=configured.decimals,
                    market=balance.bank,
                )
            )
    return state
