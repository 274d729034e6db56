"""From decoded Hyperliquid states to snapshot lines: perp positions, the USD cash line, spot
balances and oracle prices. Pure: no I/O.

Counting (docs/risk.md, "Hyperliquid"): a perp becomes `Position(kind="perp")` with its signed
size, entry price and terms (imr = 1/leverage, mmr = 1/(2 * max leverage of its margin tier at
its notional)) in `market`. The USD cash of a standard account is one `deposit` (or `borrow`)
line: cross accountValue minus the pnl of the cross perps counted, which by Hyperliquid's
identity (accountValue = totalRawUsd + sum szi*mark) is totalRawUsd + sum szi*entryPx, so that
cash plus the engine's perp pnl is the venue's cross account value. Isolated buckets are not in
the cross summary and their lines are marked isolated. A unified or portfolio-margin account
keeps its money in spot: its perp summary is not collateral and no cash line is written; its
spot USDC balance is.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from chains.base import (
    Address,
    LineIssue,
    Position,
    PositionKind,
    PriceObservation,
    TokenBalance,
    VenueAccount,
)
from chains.hyperliquid.decoders import (
    SPOT_COLLATERAL_MODES,
    ClearinghouseState,
    PerpMarkets,
    PerpPosition,
    SpotState,
)
from chains.hyperliquid.spec import HyperliquidChainSpec
from chains.hyperliquid.terms import CASH_MARKET, SPOT_VENUE, VENUE, PerpTerms, encode_terms

_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class UserRead:
    """One user's lines as one poll read them, at the perp state's `time_ms`, and the venue's
    own view of its perps from the same read (`chains.hyperliquid.venues`; None without perps,
    or for lines restored from the store)."""

    account: Address
    time_ms: int
    balances: tuple[TokenBalance, ...]
    positions: tuple[Position, ...]
    issues: tuple[LineIssue, ...]
    venue_account: VenueAccount | None = None


def to_base_units(value: Decimal, decimals: int) -> tuple[int, int]:
    """(amount_raw, decimals) holding `value` exactly, with at least `decimals` decimals.

    May raise: nothing (a finite Decimal always fits).
    """
    exponent = value.normalize().as_tuple().exponent
    shown = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    places = max(decimals, shown)
    return int(value.scaleb(places)), places


def _perp_line(
    spec: HyperliquidChainSpec, account: Address, position: PerpPosition, markets: PerpMarkets
) -> Position | LineIssue:
    coins = {c.coin: c.asset for c in spec.perp_coins}
    subject = f"{account}:{position.coin}"
    asset = coins.get(position.coin)
    if asset is None:
        return LineIssue(subject, f"unknown coin {position.coin!r}: perp position skipped")
    meta = markets.asset(position.coin)
    if meta is None:
        return LineIssue(subject, f"{position.coin} is not in metaAndAssetCtxs: skipped")
    tier_leverage = markets.tier_max_leverage(meta, position.position_value)
    if tier_leverage < 1:
        return LineIssue(subject, f"max leverage {tier_leverage} is below 1: skipped")
    terms = PerpTerms(
        coin=position.coin,
        mode=position.leverage_type,
        imr=_ONE / Decimal(position.leverage),
        mmr=_ONE / (2 * tier_leverage),
    )
    amount_raw, decimals = to_base_units(position.szi, meta.sz_decimals)
    return Position(
        account=account,
        venue=VENUE,
        asset=asset,
        kind="perp",
        amount_raw=amount_raw,
        decimals=decimals,
        entry_price=position.entry_px,
        market=encode_terms(terms),
    )


def _spot_lines(
    spec: HyperliquidChainSpec, account: Address, spot: SpotState
) -> tuple[list[TokenBalance], list[Position], list[LineIssue]]:
    tokens = {t.coin: t for t in spec.spot_tokens}
    balances: list[TokenBalance] = []
    borrows: list[Position] = []
    issues = [
        LineIssue(f"{account}:{coin}", f"spot balance skipped: {why}") for coin, why in spot.skipped
    ]
    for entry in spot.balances:
        if entry.total == 0:
            continue
        token = tokens.get(entry.coin)
        subject = f"{account}:{entry.coin}"
        if token is None:
            issues.append(LineIssue(subject, f"unknown spot coin {entry.coin!r}: skipped"))
            continue
        amount_raw, decimals = to_base_units(entry.total, token.decimals)
        if decimals != token.decimals:
            issues.append(
                LineIssue(subject, f"total {entry.total} has more than {token.decimals} decimals")
            )
            continue
        if amount_raw < 0:  # a portfolio-margin borrow
            borrows.append(
                Position(account, SPOT_VENUE, token.asset, "borrow", amount_raw, decimals)
            )
            continue
        balances.append(
            TokenBalance(account, token.asset, amount_raw, decimals, token_address=entry.coin)
        )
    return balances, borrows, issues


def user_lines(
    spec: HyperliquidChainSpec,
    account: Address,
    perp: ClearinghouseState,
    spot: SpotState,
    markets: PerpMarkets,
    abstraction: str,
    time_ms: int,
) -> UserRead:
    """Every line of one user from its two states. May raise: nothing (bad lines are issues)."""
    issues = [
        LineIssue(f"{account}:{coin}", f"perp position skipped: {why}")
        for coin, why in perp.skipped
    ]
    positions: list[Position] = []
    counted_pnl = Decimal(0)
    for position in perp.positions:
        line = _perp_line(spec, account, position, markets)
        if isinstance(line, LineIssue):
            issues.append(line)
            continue
        positions.append(line)
        if position.leverage_type == "cross":
            counted_pnl += position.szi * (position.mark - position.entry_px)
    balances, borrows, spot_issues = _spot_lines(spec, account, spot)
    positions += borrows
    issues += spot_issues
    if abstraction not in SPOT_COLLATERAL_MODES:
        cash = perp.cross_margin_summary.account_value - counted_pnl
        if spec.cash_asset is None:
            if cash != 0:
                issues.append(LineIssue(account, "perp USD cash not counted: no cash asset"))
        elif cash != 0:
            amount_raw, decimals = to_base_units(cash, spec.cash_decimals)
            kind: PositionKind = "deposit" if amount_raw > 0 else "borrow"
            positions.append(
                Position(
                    account, VENUE, spec.cash_asset, kind, amount_raw, decimals, None, CASH_MARKET
                )
            )
    return UserRead(account, time_ms, tuple(balances), tuple(positions), tuple(issues))


def market_prices(
    spec: HyperliquidChainSpec, markets: PerpMarkets, publish_time: int
) -> tuple[PriceObservation, ...]:
    """The oracle price of each priced coin; conf is its distance to the mark price. A coin
    without a usable context gives an invalid observation saying why. May raise: nothing."""
    out = []
    for priced in spec.price_coins:
        source = f"hyperliquid:{priced.coin}"
        ctx = markets.contexts.get(priced.coin)
        if ctx is None:
            reason = markets.bad_contexts.get(priced.coin, f"{priced.coin} not in the universe")
            out.append(
                PriceObservation(
                    priced.asset, source, Decimal(0), Decimal(0), publish_time, False, reason
                )
            )
            continue
        conf = abs(ctx.mark_px - ctx.oracle_px)
        out.append(PriceObservation(priced.asset, source, ctx.oracle_px, conf, publish_time))
    return tuple(out)
