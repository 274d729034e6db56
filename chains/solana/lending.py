"""Lines of the lending and perp venues of one Solana read: Drift users (spot balances, perps),
Kamino obligations (deposits in liquidity units, borrows) and MarginFi accounts, each against
the markets, reserves and banks read in the same pass (`chains.solana.lines` puts them
together). A bad account becomes a `LineIssue` and only its lines are skipped.
"""

from __future__ import annotations

from decimal import Decimal

from chains.base import Address, LineIssue, Position
from chains.solana import venues
from chains.solana.accounts import Lines, RawAccount, decoded, venue_read
from chains.solana.decoders import drift, kamino, marginfi
from chains.solana.plan import ReadPlan, Role
from chains.solana.spec import SolanaChainSpec


def configured_index(role: Role) -> int:
    assert role.drift_market is not None
    return role.drift_market.market_index


def drift_spot_read(
    spec: SolanaChainSpec, key: str, role: Role, account: RawAccount | None
) -> venues.Read[venues.DriftSpotRead]:
    """The spot market for the venue view, or why not (also when it is not the configured
    market)."""
    assert spec.drift is not None and role.drift_market is not None
    read = venue_read(
        key, "Drift spot market", account, spec.drift.program_id, venues.read_drift_spot_market
    )
    configured = role.drift_market
    if not isinstance(read, str) and (
        read.state.market_index != configured.market_index
        or read.state.decimals != configured.decimals
    ):
        return f"Drift spot market {key}: index or decimals differ from the config"
    return read


def drift_market(
    spec: SolanaChainSpec, key: str, role: Role, account: RawAccount, lines: Lines
) -> drift.DriftSpotMarketState | None:
    configured = role.drift_market
    assert configured is not None and spec.drift is not None
    market = decoded(
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


def drift_lines(
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
    user = decoded(
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


def kamino_reserve(
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
    reserve = decoded(key, name, account, venue.program_id, kamino.decode_reserve, lines)
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


def kamino_lines(
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
    obligation = decoded(key, name, account, venue.program_id, kamino.decode_obligation, lines)
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


def marginfi_bank(
    spec: SolanaChainSpec, key: str, role: Role, account: RawAccount | None, lines: Lines
) -> marginfi.MarginfiBankState | None:
    """The decoded bank, or None with an issue naming it (its balances are then skipped)."""
    venue, configured = spec.marginfi, role.marginfi_bank
    assert venue is not None and configured is not None
    name = f"MarginFi bank {configured.asset}"
    bank = decoded(key, name, account, venue.program_id, marginfi.decode_bank, lines)
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


def marginfi_lines(
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
    state = decoded(key, name, account, venue.program_id, marginfi.decode_account, lines)
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
