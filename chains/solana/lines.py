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

The lines of the lending and perp venues are in `chains.solana.lending`, the account readers
they share in `chains.solana.accounts`; this module puts a read together.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from chains.base import (
    Address,
    LineIssue,
    PriceObservation,
    TokenBalance,
)
from chains.solana import venues
from chains.solana.accounts import Lines, RawAccount, oracle_read, venue_read
from chains.solana.decoders import AccountDecodeError, drift, kamino, marginfi, pyth
from chains.solana.decoders.spl_token import decode_token_account
from chains.solana.lending import (
    configured_index,
    drift_lines,
    drift_market,
    drift_spot_read,
    kamino_lines,
    kamino_reserve,
    marginfi_bank,
    marginfi_lines,
)
from chains.solana.plan import ReadPlan, Role
from chains.solana.spec import SolanaChainSpec

NATIVE_DECIMALS = 9

__all__ = ["NATIVE_DECIMALS", "Lines", "RawAccount", "build_lines"]


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
            oracles[key] = oracle_read(account, drift_program)
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
            spot_reads[configured_index(role)] = drift_spot_read(spec, key, role, account)
            if account is None:
                lines.issues.append(LineIssue(key, "Drift spot market account not found"))
                continue
            market = drift_market(spec, key, role, account, lines)
            if market is not None:
                markets[market.market_index] = market
        elif role.kind == "drift_perp_market" and role.drift_perp is not None:
            assert drift_program is not None
            perp_reads[role.drift_perp.market_index] = venue_read(
                key, "Drift perp market", account, drift_program, venues.read_drift_perp_market
            )
        elif role.kind == "drift_user" and account is not None:
            drift_users.append((key, role, account))
        elif role.kind == "kamino" and account is not None:
            obligations.append((key, role, account))
        elif role.kind == "kamino_reserve":
            reserve = kamino_reserve(spec, key, role, account, lines, wrong_units)
            if reserve is not None:
                reserves[key] = reserve
            assert spec.kamino is not None
            reserve_read = venue_read(
                key, "Kamino reserve", account, spec.kamino.program_id, venues.read_kamino_reserve
            )
            if reserve is None and not isinstance(reserve_read, str):
                reserve_read = f"Kamino reserve {key}: its decimals differ from the config"
            reserve_reads[key] = reserve_read
        elif role.kind == "marginfi_bank":
            bank = marginfi_bank(spec, key, role, account, lines)
            if bank is not None:
                banks[key] = bank
            assert spec.marginfi is not None
            bank_read = venue_read(
                key, "MarginFi bank", account, spec.marginfi.program_id, marginfi.decode_bank
            )
            if bank is None and not isinstance(bank_read, str):
                bank_read = f"MarginFi bank {key}: its group or decimals differ from the config"
            bank_reads[key] = bank_read
        elif role.kind == "marginfi" and account is not None:
            marginfi_accounts.append((key, role, account))
    for key, role, account in drift_users:
        user = drift_lines(spec, key, role, account, markets, lines)
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
        obligation = kamino_lines(spec, plan, key, role, account, reserves, wrong_units, lines)
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
        state = marginfi_lines(spec, plan, key, role, account, banks, lines)
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
