"""Venue accounts (design §7a) from the Solana accounts of one read: Drift users, Kamino
obligations and MarginFi accounts, with the parameters of their markets, reserves and banks and
the venues' own prices, all read in the same `getMultipleAccounts` pass.

Pure: no I/O. Each builder returns a `chains.base.VenueAccount` whose assets carry the keys the
venue's rules module documents (`aggregator.venues.drift`, `kamino`, `marginfi`). A market,
reserve or bank that could not be read, or whose parameters decode out of range (the decoders
raise `AccountDecodeError`), does not drop the account: it appears with `problem` naming the
market and why, and no venue health is computed from it.

Venue prices:
- Drift: the account a spot or perp market names as `oracle`, read as its `oracle_source` says:
  PythPull / Pyth1KPull / Pyth1MPull / PythStableCoinPull from a Pyth `PriceUpdateV2`,
  PythLazer / 1K / 1M / StableCoin from Drift's `PythLazerOracle` account; 1K / 1M sources are
  multiplied by 1e3 / 1e6 and stable coins within min(5 bps, conf) of 1 are counted at 1, as
  `state/oracle.rs` `get_pyth_price` / `get_pyth_stable_coin_price` do; QuoteAsset is 1. Other
  sources (legacy push Pyth, Switchboard, Prelaunch) give no price.
- MarginFi: a bank of `pyth_push_oracle` setup prices from `oracle_keys[0]` when that is a
  `PriceUpdateV2` account (the current layout), else from the shard-0 push-oracle account of the
  feed id `oracle_keys[0]` holds (the layout before marginfi's oracle migration), whose feed id
  must match. Other setups give no price. The confidence interval is 2.12 x conf capped at 5 %
  of the price; a price whose interval exceeds 10 % of it (marginfi's default
  `oracle_max_confidence`) is refused, as the program does.
- Kamino: the reserve's own `liquidity.market_price_sf` (refreshed by the program from its
  Scope / Pyth / Switchboard configuration); 0 (never refreshed) gives no price.
No price is `VenueAsset.price = None`: the rules then raise `VenueParameterError` naming it.

A few fields the decoders do not read are read here, at offsets computed from the venues'
struct field order (documented with each reader, checked on the real mainnet fixtures):
Drift SpotMarket `oracle_source` @687; PerpMarket `amm.oracle_source` @926,
`unrealized_pnl_maintenance_asset_weight` u32 @1148, `status` u8 @1162; Kamino Reserve
`liquidity.market_price_sf` u128 @248 and `market_price_last_updated_ts` u64 @264; Drift
`PythLazerOracle` (state/pyth_lazer_oracle.rs): price i64 @8, publish_time u64 @16, posted_slot
u64 @24, exponent i32 @32, conf u64 @40.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, TypeAlias, TypeVar

from solders.pubkey import Pubkey

from chains.base import Address, VenueAccount, VenueAsset
from chains.solana.decoders import AccountDecodeError, drift, kamino, marginfi, pyth
from chains.solana.plan import ReadPlan
from chains.solana.spec import PYTH_PUSH_ORACLE_PROGRAM, PYTH_RECEIVER_PROGRAM, SolanaChainSpec

T = TypeVar("T")
Read: TypeAlias = T | str  # a decoded account, or why it could not be had

DEFAULT_KEY = str(Pubkey.default())
PYTH_OWNERS = (PYTH_RECEIVER_PROGRAM, PYTH_PUSH_ORACLE_PROGRAM)
PYTH_LAZER_ORACLE_DISCRIMINATOR = hashlib.sha256(b"account:PythLazerOracle").digest()[:8]
PYTH_LAZER_ORACLE_LEN = 48
SF_ONE = 1 << 60

# Drift OracleSource (state/oracle.rs), in declaration order.
DRIFT_ORACLE_SOURCES = (
    "Pyth",
    "Switchboard",
    "QuoteAsset",
    "Pyth1K",
    "Pyth1M",
    "PythStableCoin",
    "Prelaunch",
    "PythPull",
    "Pyth1KPull",
    "Pyth1MPull",
    "PythStableCoinPull",
    "SwitchboardOnDemand",
    "PythLazer",
    "PythLazer1K",
    "PythLazer1M",
    "PythLazerStableCoin",
)
_PULL = {"PythPull": 1, "Pyth1KPull": 1_000, "Pyth1MPull": 1_000_000, "PythStableCoinPull": 1}
_LAZER = {"PythLazer": 1, "PythLazer1K": 1_000, "PythLazer1M": 1_000_000, "PythLazerStableCoin": 1}
_STABLE = frozenset({"PythStableCoinPull", "PythLazerStableCoin"})
_STABLE_BAND = Decimal("0.0005")  # Drift's five_bps in PRICE_PRECISION
MARGINFI_CONF_MULTIPLE = Decimal("2.12")  # CONF_INTERVAL_MULTIPLE
MARGINFI_MAX_CONF = Decimal("0.05")  # MAX_CONF_INTERVAL: the interval is capped at 5 %
MARGINFI_DEFAULT_MAX_CONFIDENCE = Decimal("0.10")  # larger intervals are refused


class _Raw(Protocol):
    @property
    def owner(self) -> str: ...

    @property
    def data(self) -> bytes: ...


# --- fields the decoders do not read --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriftSpotRead:
    state: drift.DriftSpotMarketState
    oracle_source: str


@dataclass(frozen=True, slots=True)
class DriftPerpRead:
    state: drift.DriftPerpMarketState
    oracle_source: str
    unrealized_pnl_maintenance_asset_weight: int  # MARGIN_PRECISION (1e4)
    status: int  # MarketStatus: 0 initialized, 1 active, ... 5 settlement, 6 delisted


@dataclass(frozen=True, slots=True)
class KaminoReserveRead:
    state: kamino.KaminoReserveState
    market_price_sf: int  # USD per whole token x 2**60
    market_price_updated_ts: int


@dataclass(frozen=True, slots=True)
class OraclePrice:
    """A price read from an oracle account: `kind` is "pyth_pull" (PriceUpdateV2, with its
    feed id) or "pyth_lazer" (Drift's PythLazerOracle)."""

    kind: str
    price: Decimal
    conf: Decimal
    publish_time: int
    feed_id: str | None = None


def _oracle_source(value: int, where: str) -> str:
    if value >= len(DRIFT_ORACLE_SOURCES):
        raise AccountDecodeError(f"{where} oracle_source {value} is unknown")
    return DRIFT_ORACLE_SOURCES[value]


def read_drift_spot_market(data: bytes) -> DriftSpotRead:
    """A decoded SpotMarket and its `oracle_source` (u8 @687: after market_index u16 @684 and
    orders_enabled @686). May raise: AccountDecodeError."""
    state = drift.decode_spot_market(data)
    return DriftSpotRead(
        state, _oracle_source(data[687], f"Drift spot market {state.market_index}")
    )


def read_drift_perp_market(data: bytes) -> DriftPerpRead:
    """A decoded PerpMarket, its `amm.oracle_source` (u8 @926), maintenance weight of positive
    unrealized pnl (u32 @1148, after unrealized_pnl_initial_asset_weight @1144) and `status`
    (u8 @1162). May raise: AccountDecodeError (also for a weight above 1e4)."""
    state = drift.decode_perp_market(data)
    where = f"Drift perp market {state.market_index}"
    (weight,) = struct.unpack_from("<I", data, 1148)
    if weight > drift.MARGIN_PRECISION:
        raise AccountDecodeError(
            f"{where} unrealized_pnl_maintenance_asset_weight {weight} out of range (<= 1e4)"
        )
    return DriftPerpRead(state, _oracle_source(data[926], where), weight, data[1162])


def read_kamino_reserve(data: bytes) -> KaminoReserveRead:
    """A decoded Reserve and its own market price (`liquidity.market_price_sf` u128 @248,
    `market_price_last_updated_ts` u64 @264). May raise: AccountDecodeError."""
    state = kamino.decode_reserve(data)
    low, high = struct.unpack_from("<QQ", data, 248)
    (updated,) = struct.unpack_from("<Q", data, 264)
    return KaminoReserveRead(state, low | high << 64, updated)


def read_oracle(account: _Raw, drift_program: str | None = None) -> OraclePrice:
    """The price of a Pyth `PriceUpdateV2` (owned by a Pyth receiver program) or of Drift's
    `PythLazerOracle` (owned by `drift_program`). May raise: AccountDecodeError (anything else,
    or a non-positive price)."""
    if account.owner in PYTH_OWNERS:
        update = pyth.decode_price_update_v2(account.data)
        if update.price <= 0:
            raise AccountDecodeError(f"Pyth price {update.price} is not positive")
        return OraclePrice(
            "pyth_pull",
            update.price_decimal,
            update.conf_decimal,
            update.publish_time,
            update.feed_id,
        )
    data = account.data
    if drift_program is not None and account.owner == drift_program:
        if len(data) != PYTH_LAZER_ORACLE_LEN or data[:8] != PYTH_LAZER_ORACLE_DISCRIMINATOR:
            raise AccountDecodeError("Drift-owned oracle account is not a PythLazerOracle")
        price, publish_time, _slot, exponent, conf = struct.unpack_from("<qQQi4xQ", data, 8)
        if price <= 0:
            raise AccountDecodeError(f"Pyth Lazer price {price} is not positive")
        return OraclePrice(
            "pyth_lazer",
            Decimal(price).scaleb(exponent),
            Decimal(conf).scaleb(exponent),
            publish_time,
        )
    raise AccountDecodeError(f"oracle account owned by {account.owner} is not a Pyth price")


def encode_pyth_lazer_oracle(price: int, exponent: int, conf: int, publish_time: int) -> bytes:
    """A PythLazerOracle account with the real layout (for tests and local chains)."""
    return PYTH_LAZER_ORACLE_DISCRIMINATOR + struct.pack(
        "<qQQi4xQ", price, publish_time, 0, exponent, conf
    )


def marginfi_push_oracle_address(feed_id: str) -> str:
    """The shard-0 push-oracle account of a feed (seeds [shard u16 LE, feed id] under the Pyth
    push-oracle program): where a bank that stores its feed id in `oracle_keys[0]` reads."""
    address, _bump = Pubkey.find_program_address(
        [bytes(2), bytes(Pubkey.from_string(feed_id))], Pubkey.from_string(PYTH_PUSH_ORACLE_PROGRAM)
    )
    return str(address)


def drift_oracle_keys(markets: Iterable[DriftSpotRead | DriftPerpRead]) -> list[str]:
    """The oracle accounts Drift markets price from (none for QuoteAsset or the default key)."""
    keys = []
    for market in markets:
        if market.oracle_source != "QuoteAsset" and market.state.oracle != DEFAULT_KEY:
            keys.append(market.state.oracle)
    return keys


def marginfi_oracle_keys(banks: Iterable[marginfi.MarginfiBankState]) -> list[str]:
    """The oracle accounts MarginFi banks price from: for `pyth_push_oracle`, `oracle_keys[0]`
    itself and the push-oracle account of the feed id it may hold."""
    keys = []
    for bank in banks:
        first = bank.oracle_keys[0]
        if bank.oracle_setup == "pyth_push_oracle" and first != DEFAULT_KEY:
            keys += [first, marginfi_push_oracle_address(first)]
    return keys


# --- prices -----------------------------------------------------------------------------------


def drift_price(
    oracle_source: str, oracle_key: str, oracles: Mapping[str, Read[OraclePrice]]
) -> tuple[Decimal | None, str | None]:
    """(the price Drift counts a market at, None) or (None, why there is none)."""
    if oracle_source == "QuoteAsset":
        return Decimal(1), None
    multiple = _PULL.get(oracle_source) or _LAZER.get(oracle_source)
    if multiple is None:
        return None, f"oracle source {oracle_source} is not read"
    read = oracles.get(oracle_key, f"oracle {oracle_key} not read")
    if isinstance(read, str):
        return None, read
    wanted = "pyth_pull" if oracle_source in _PULL else "pyth_lazer"
    if read.kind != wanted:
        return None, f"oracle {oracle_key} is {read.kind}, source {oracle_source} wants {wanted}"
    price = read.price * multiple
    if oracle_source in _STABLE and abs(price - 1) <= min(_STABLE_BAND, read.conf * multiple):
        price = Decimal(1)
    return price, None


def marginfi_price(
    bank: marginfi.MarginfiBankState, oracles: Mapping[str, Read[OraclePrice]]
) -> tuple[Decimal | None, Decimal, str | None]:
    """(price, confidence interval, None) or (None, 0, why there is no price)."""
    if bank.oracle_setup != "pyth_push_oracle":
        return None, Decimal(0), f"oracle setup {bank.oracle_setup} is not read"
    first = bank.oracle_keys[0]
    direct = oracles.get(first)
    if isinstance(direct, OraclePrice) and direct.kind == "pyth_pull":
        found = direct
    else:
        feed_id = "0x" + bytes(Pubkey.from_string(first)).hex()
        pushed = oracles.get(marginfi_push_oracle_address(first))
        if not isinstance(pushed, OraclePrice) or pushed.feed_id != feed_id:
            reason = direct if isinstance(direct, str) else f"oracle {first} not read"
            return None, Decimal(0), reason
        found = pushed
    interval = found.conf * MARGINFI_CONF_MULTIPLE
    if interval > found.price * MARGINFI_DEFAULT_MAX_CONFIDENCE:
        return None, Decimal(0), f"confidence {interval} exceeds 10 % of price {found.price}"
    return found.price, min(interval, found.price * MARGINFI_MAX_CONF), None


def sf_decimal(bits: int) -> Decimal:
    """The exact value of a U68F60 (`*_sf`) field: bits / 2**60."""
    digits, exponent = bits * 5**60, -60
    while exponent < 0 and digits % 10 == 0:
        digits //= 10
        exponent += 1
    return Decimal(f"{digits}E{exponent}")


def _ratio(value: int, precision: int) -> str:
    return str(Decimal(value).scaleb(-len(str(precision)) + 1).normalize())


# --- builders ---------------------------------------------------------------------------------


def drift_venue_account(
    *,
    wallet: str,
    user_key: str,
    user: drift.DriftUser,
    spot_assets: Mapping[int, str],
    perp_assets: Mapping[int, str],
    spot_markets: Mapping[int, Read[DriftSpotRead]],
    perp_markets: Mapping[int, Read[DriftPerpRead]],
    oracles: Mapping[str, Read[OraclePrice]],
) -> VenueAccount:
    """A Drift User as `aggregator.venues.drift` counts it. `spot_assets` / `perp_assets`: the
    configured symbol of each market index."""
    assets: list[VenueAsset] = []
    problems: list[str] = []
    for spot in user.spot_positions:
        index = spot.market_index
        symbol = spot_assets.get(index)
        read = spot_markets.get(index, f"Drift spot market {index} not read")
        if symbol is None or isinstance(read, str):
            problems.append(read if isinstance(read, str) else f"spot market {index} unknown")
            continue
        market = read.state
        amount = drift.spot_token_amount(spot, market)
        price, _why = drift_price(read.oracle_source, market.oracle, oracles)
        params = {
            "maintenance_asset_weight": _ratio(market.maintenance_asset_weight, 10_000),
            "maintenance_liability_weight": _ratio(market.maintenance_liability_weight, 10_000),
            "imf_factor": _ratio(market.imf_factor, 1_000_000),
        }
        if index != 0:  # Drift charges open orders on the other spot markets only
            params["open_orders"] = str(spot.open_orders)
        assets.append(
            VenueAsset(
                asset=symbol,
                amount_raw=amount if spot.balance_type == "deposit" else -amount,
                decimals=market.decimals,
                price=price,
                params=params,
                market=f"spot:{index}",
            )
        )
    for perp in user.perp_positions:
        index = perp.market_index
        symbol = perp_assets.get(index)
        perp_read = perp_markets.get(index, f"Drift perp market {index} not read")
        if symbol is None or isinstance(perp_read, str):
            problems.append(
                perp_read if isinstance(perp_read, str) else f"perp market {index} unknown"
            )
            continue
        perp_market = perp_read.state
        price, _why = drift_price(perp_read.oracle_source, perp_market.oracle, oracles)
        assets.append(
            VenueAsset(
                asset=symbol,
                amount_raw=perp.base_asset_amount,
                decimals=drift.BASE_PRECISION_DECIMALS,
                price=price,
                params={
                    "maintenance_margin_ratio": _ratio(
                        perp_market.margin_ratio_maintenance, 10_000
                    ),
                    "imf_factor": _ratio(perp_market.imf_factor, 1_000_000),
                    "unrealized_pnl_maintenance_asset_weight": _ratio(
                        perp_read.unrealized_pnl_maintenance_asset_weight, 10_000
                    ),
                    "quote_asset_amount": str(
                        Decimal(perp.quote_asset_amount).scaleb(-drift.QUOTE_PRECISION_DECIMALS)
                    ),
                    "open_orders": str(perp.open_orders),
                },
                market=f"perp:{index}",
            )
        )
    return VenueAccount(
        account=Address(wallet),
        venue="drift",
        rules="drift",
        assets=tuple(assets),
        params={"sub_account_id": str(user.sub_account_id)},
        subaccount=user_key,
        problem="; ".join(problems) or None,
    )


def kamino_venue_account(
    *,
    wallet: str,
    obligation_key: str,
    obligation: kamino.KaminoObligation,
    reserve_assets: Mapping[str, tuple[str, int]],
    reserves: Mapping[str, Read[KaminoReserveRead]],
) -> VenueAccount:
    """A Kamino Obligation as `aggregator.venues.kamino` counts it. `reserve_assets`: the
    configured (symbol, decimals) of each reserve address."""
    assets: list[VenueAsset] = []
    problems: list[str] = []
    if obligation.elevation_group != 0:
        problems.append(
            f"obligation is in elevation group {obligation.elevation_group}, whose LTV and "
            "liquidation threshold are not read"
        )
    legs = [(d.reserve, d.deposited_amount, True) for d in obligation.deposits]
    legs += [(b.reserve, b.borrowed_amount_raw, False) for b in obligation.borrows]
    for address, amount, is_deposit in legs:
        configured = reserve_assets.get(address)
        read = reserves.get(address, f"Kamino reserve {address} not read")
        if configured is None or isinstance(read, str):
            problems.append(read if isinstance(read, str) else f"Kamino reserve {address} unknown")
            continue
        state = read.state
        if state.lending_market != obligation.lending_market:
            problems.append(f"Kamino reserve {address} belongs to market {state.lending_market}")
            continue
        symbol, decimals = configured
        tokens = state.collateral_to_liquidity(amount) if is_deposit else -amount
        price = sf_decimal(read.market_price_sf) if read.market_price_sf > 0 else None
        assets.append(
            VenueAsset(
                asset=symbol,
                amount_raw=tokens,
                decimals=decimals,
                price=price,
                params={
                    "loan_to_value": _ratio(state.loan_to_value_pct, 100),
                    "liquidation_threshold": _ratio(state.liquidation_threshold_pct, 100),
                    "borrow_factor": _ratio(state.borrow_factor_pct, 100),
                },
                market=address,
            )
        )
    return VenueAccount(
        account=Address(wallet),
        venue="kamino",
        rules="kamino",
        assets=tuple(assets),
        params={"elevation_group": str(obligation.elevation_group)},
        reported={
            "deposited_value": str(sf_decimal(obligation.deposited_value_sf)),
            "borrow_factor_adjusted_debt_value": str(
                sf_decimal(obligation.borrow_factor_adjusted_debt_value_sf)
            ),
            "unhealthy_borrow_value": str(sf_decimal(obligation.unhealthy_borrow_value_sf)),
            "allowed_borrow_value": str(sf_decimal(obligation.allowed_borrow_value_sf)),
        },
        subaccount=obligation_key,
        problem="; ".join(problems) or None,
    )


def marginfi_venue_account(
    *,
    wallet: str,
    account_key: str,
    account: marginfi.MarginfiAccountState,
    bank_assets: Mapping[str, tuple[str, int]],
    banks: Mapping[str, Read[marginfi.MarginfiBankState]],
    oracles: Mapping[str, Read[OraclePrice]],
) -> VenueAccount:
    """A MarginfiAccount as `aggregator.venues.marginfi` counts it. `bank_assets`: the
    configured (symbol, decimals) of each bank address."""
    assets: list[VenueAsset] = []
    problems: list[str] = []
    for balance in account.balances:
        configured = bank_assets.get(balance.bank)
        read = banks.get(balance.bank, f"MarginFi bank {balance.bank} not read")
        if configured is None or isinstance(read, str):
            unknown = f"MarginFi bank {balance.bank} unknown"
            problems.append(read if isinstance(read, str) else unknown)
            continue
        symbol, decimals = configured
        price, interval, _why = marginfi_price(read, oracles)
        params = {
            "asset_weight_maint": str(read.asset_weight_maint),
            "liability_weight_maint": str(read.liability_weight_maint),
            "price_conf_interval": str(interval),
            "isolated": "1" if read.risk_tier == "isolated" else "0",
        }
        deposit = read.asset_amount(balance.asset_shares)
        debt = read.liability_amount(balance.liability_shares)
        for amount in (deposit, -debt):
            if amount:
                assets.append(
                    VenueAsset(symbol, amount, decimals, price, params, market=balance.bank)
                )
    return VenueAccount(
        account=Address(wallet),
        venue="marginfi",
        rules="marginfi",
        assets=tuple(assets),
        subaccount=account_key,
        problem="; ".join(problems) or None,
    )


def referenced_oracles(
    spec: SolanaChainSpec, plan: ReadPlan, accounts: Mapping[str, _Raw | None]
) -> list[str]:
    """The oracle accounts the Drift markets and MarginFi banks of one read price from, in plan
    order without repeats (markets that cannot be decoded name none)."""
    found: dict[str, None] = {}
    drift_program = spec.drift.program_id if spec.drift is not None else None
    marginfi_program = spec.marginfi.program_id if spec.marginfi is not None else None
    for key in plan.keys:
        role, account = plan.roles[key], accounts.get(key)
        if account is None:
            continue
        try:
            if role.kind == "drift_market" and account.owner == drift_program:
                keys = drift_oracle_keys([read_drift_spot_market(account.data)])
            elif role.kind == "drift_perp_market" and account.owner == drift_program:
                keys = drift_oracle_keys([read_drift_perp_market(account.data)])
            elif role.kind == "marginfi_bank" and account.owner == marginfi_program:
                keys = marginfi_oracle_keys([marginfi.decode_bank(account.data)])
            else:
                continue
        except AccountDecodeError:
            continue
        found.update(dict.fromkeys(keys))
    return list(found)
