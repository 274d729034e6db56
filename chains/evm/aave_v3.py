"""Aave v3 lending positions: units, decoders and the Multicall3 read section.

Units (aave-v3-origin): account totals are in the market's base currency (USD markets: 1e8 = 1 USD),
the health factor is a WAD (1e18 = 1.0; 2**256-1 when nothing is owed), LTV and liquidation
thresholds are basis points (1e4 = 100%). Reserve amounts are in the underlying token's units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from chains.base import Address, LineIssue, Position, VenueAccount, VenueAsset
from chains.evm.abi import (
    GET_ASSET_PRICE,
    GET_RESERVE_CONFIGURATION_DATA,
    GET_USER_ACCOUNT_DATA,
    GET_USER_RESERVE_DATA,
    AbiDecodeError,
    decode_uint256,
    decode_values,
    encode_address_call,
)
from chains.evm.address import address_bytes
from chains.evm.multicall import Call3, CallResult
from chains.evm.plan import SnapshotParts, describe_failure
from chains.evm.spec import AavePool, EvmToken

USD_BASE_UNIT = 10**8
WAD = 10**18
BPS_DENOMINATOR = 10_000
NO_DEBT_HEALTH_FACTOR = 2**256 - 1

ACCOUNT_DATA_TYPES = ("uint256",) * 6
USER_RESERVE_DATA_TYPES = (
    "uint256",  # currentATokenBalance
    "uint256",  # currentStableDebt
    "uint256",  # currentVariableDebt
    "uint256",  # principalStableDebt
    "uint256",  # scaledVariableDebt
    "uint256",  # stableBorrowRate
    "uint256",  # liquidityRate
    "uint40",  # stableRateLastUpdated
    "bool",  # usageAsCollateralEnabled
)
RESERVE_CONFIGURATION_DATA_TYPES = (
    "uint256",  # decimals
    "uint256",  # ltv (bps)
    "uint256",  # liquidationThreshold (bps)
    "uint256",  # liquidationBonus (bps, including 100%: 10500 = 5% bonus)
    "uint256",  # reserveFactor (bps)
    "bool",  # usageAsCollateralEnabled
    "bool",  # borrowingEnabled
    "bool",  # stableBorrowRateEnabled
    "bool",  # isActive
    "bool",  # isFrozen
)
# ReserveConfiguration.sol stores decimals in 8 bits (48-55).
MAX_RESERVE_DECIMALS = 255


def base_to_usd(amount_base: int, base_unit: int = USD_BASE_UNIT) -> Decimal:
    """An amount in base currency units as USD: 12345678900 at 1e8 is 123.456789."""
    return Decimal(amount_base) / Decimal(base_unit)


def health_factor(raw_wad: int) -> Decimal | None:
    """The health factor as a Decimal (1e18 = 1.0); None when nothing is owed (2**256-1)."""
    if raw_wad == NO_DEBT_HEALTH_FACTOR:
        return None
    return Decimal(raw_wad) / Decimal(WAD)


def bps_to_ratio(bps: int) -> Decimal:
    """Basis points as a ratio: 8250 is 0.825."""
    return Decimal(bps) / Decimal(BPS_DENOMINATOR)


def value_in_base(amount_raw: int, decimals: int, price_base: int) -> int:
    """The base-currency value of a token amount at a base-currency price, rounded down:
    1.5 WETH (18 dec) at 3000.00000000 is 450000000000."""
    return amount_raw * price_base // int(10**decimals)


@dataclass(frozen=True, slots=True)
class AccountData:
    """`Pool.getUserAccountData` in raw units (base currency, bps, WAD)."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold_bps: int
    ltv_bps: int
    health_factor_wad: int

    @property
    def health_factor(self) -> Decimal | None:
        return health_factor(self.health_factor_wad)


@dataclass(frozen=True, slots=True)
class UserReserve:
    """The fields of `PoolDataProvider.getUserReserveData` the adapter uses."""

    a_token_balance: int
    stable_debt: int
    variable_debt: int
    usage_as_collateral: bool

    @property
    def debt(self) -> int:
        # Stable debt is deprecated since v3.2 (always 0) but still counted where it exists.
        return self.stable_debt + self.variable_debt


class ReserveParameterError(AbiDecodeError):
    """Reserve parameters that decode but cannot be Aave's (a threshold above 100%, an LTV above
    the threshold): an AbiDecodeError, so a caller turns it into an issue line like any other."""


@dataclass(frozen=True, slots=True)
class ReserveConfiguration:
    """`PoolDataProvider.getReserveConfigurationData(asset)`: bps except `decimals`."""

    decimals: int
    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    reserve_factor_bps: int
    usage_as_collateral_enabled: bool
    borrowing_enabled: bool
    stable_borrow_rate_enabled: bool
    is_active: bool
    is_frozen: bool


def check_reserve_parameters(config: ReserveConfiguration) -> ReserveConfiguration:
    """`config` itself when its parameters are in Aave's ranges.

    May raise: ReserveParameterError (threshold > 10000 bps, ltv > threshold, decimals > 255).
    """
    if config.liquidation_threshold_bps > BPS_DENOMINATOR:
        raise ReserveParameterError(
            f"liquidation threshold {config.liquidation_threshold_bps} bps is above "
            f"{BPS_DENOMINATOR} bps (100%)"
        )
    if config.ltv_bps > config.liquidation_threshold_bps:
        raise ReserveParameterError(
            f"ltv {config.ltv_bps} bps is above the liquidation threshold "
            f"{config.liquidation_threshold_bps} bps"
        )
    if config.decimals > MAX_RESERVE_DECIMALS:
        raise ReserveParameterError(f"decimals {config.decimals} do not fit Aave's 8 bits")
    return config


def decode_reserve_configuration(data: bytes) -> ReserveConfiguration:
    """Decoded and range-checked (see `check_reserve_parameters`).

    May raise: AbiDecodeError (wrong shape), ReserveParameterError (out-of-range parameters).
    """
    if len(data) != 10 * 32:
        raise AbiDecodeError(
            f"getReserveConfigurationData returned {len(data)} bytes, expected 320"
        )
    values = decode_values(RESERVE_CONFIGURATION_DATA_TYPES, data)
    config = ReserveConfiguration(
        decimals=int(values[0]),
        ltv_bps=int(values[1]),
        liquidation_threshold_bps=int(values[2]),
        liquidation_bonus_bps=int(values[3]),
        reserve_factor_bps=int(values[4]),
        usage_as_collateral_enabled=bool(values[5]),
        borrowing_enabled=bool(values[6]),
        stable_borrow_rate_enabled=bool(values[7]),
        is_active=bool(values[8]),
        is_frozen=bool(values[9]),
    )
    return check_reserve_parameters(config)


def reserve_configuration_calldata(asset: str) -> bytes:
    """`getReserveConfigurationData(asset)` calldata."""
    return encode_address_call(GET_RESERVE_CONFIGURATION_DATA, address_bytes(asset))


def asset_price_calldata(asset: str) -> bytes:
    """`AaveOracle.getAssetPrice(asset)` calldata."""
    return encode_address_call(GET_ASSET_PRICE, address_bytes(asset))


def decode_asset_price(data: bytes) -> int:
    """`AaveOracle.getAssetPrice` in base currency units (1e8 = 1 USD on USD markets); Aave's
    oracle never prices an asset at 0, so 0 is an error too.

    May raise: AbiDecodeError.
    """
    price = decode_uint256(data)
    if price == 0:
        raise AbiDecodeError("getAssetPrice returned 0")
    return price


def decode_account_data(data: bytes) -> AccountData:
    """May raise: AbiDecodeError."""
    if len(data) != 6 * 32:
        raise AbiDecodeError(f"getUserAccountData returned {len(data)} bytes, expected 192")
    return AccountData(*decode_values(ACCOUNT_DATA_TYPES, data))


def decode_user_reserve(data: bytes) -> UserReserve:
    """May raise: AbiDecodeError."""
    if len(data) != 9 * 32:
        raise AbiDecodeError(f"getUserReserveData returned {len(data)} bytes, expected 288")
    values = decode_values(USER_RESERVE_DATA_TYPES, data)
    return UserReserve(values[0], values[1], values[2], bool(values[8]))


def user_reserve_calldata(asset: str, user: str) -> bytes:
    """`getUserReserveData(asset, user)` calldata."""
    pad = bytes(12)
    return GET_USER_RESERVE_DATA + pad + address_bytes(asset) + pad + address_bytes(user)


def reserve_positions(
    venue: str, wallet: Address, reserve: EvmToken, data: UserReserve
) -> list[Position]:
    """The deposit (positive) and borrow (negative) positions of one user in one reserve."""
    positions: list[Position] = []
    if data.a_token_balance > 0:
        positions.append(
            Position(
                account=wallet,
                venue=venue,
                asset=reserve.asset,
                kind="deposit",
                amount_raw=data.a_token_balance,
                decimals=reserve.decimals,
                market=reserve.address,
            )
        )
    if data.debt > 0:
        positions.append(
            Position(
                account=wallet,
                venue=venue,
                asset=reserve.asset,
                kind="borrow",
                amount_raw=-data.debt,
                decimals=reserve.decimals,
                market=reserve.address,
            )
        )
    return positions


def account_extra(venue: str, wallet: Address, account: AccountData) -> dict[str, str]:
    """The pool's own account totals as snapshot extras (decimal strings, USD and ratios)."""
    hf = account.health_factor
    prefix = f"{venue}:{wallet}"
    return {
        f"{prefix}:total_collateral_base": str(account.total_collateral_base),
        f"{prefix}:total_debt_base": str(account.total_debt_base),
        f"{prefix}:available_borrows_base": str(account.available_borrows_base),
        f"{prefix}:liquidation_threshold": str(
            bps_to_ratio(account.current_liquidation_threshold_bps)
        ),
        f"{prefix}:ltv": str(bps_to_ratio(account.ltv_bps)),
        f"{prefix}:health_factor": "none" if hf is None else str(hf),
    }


def venue_account(
    pool: AavePool,
    wallet: Address,
    reported: AccountData | None,
    held: Sequence[tuple[EvmToken, UserReserve]],
    configs: dict[str, ReserveConfiguration | str],
    prices: dict[str, int | str],
) -> VenueAccount:
    """The pool's own view of one wallet (rules in `aggregator.venues.aave_rules`): its reserves
    with their parameters and oracle prices, read at the same block as its positions.
    `configs` and `prices` hold, per asset, the decoded read or why it failed."""
    venue = f"aave_v3:{pool.name}"
    problems: list[str] = []
    if pool.oracle is None:
        problems.append("no oracle configured for the pool ([chains.*.aave_pools] oracle)")
    assets: list[VenueAsset] = []
    for reserve, data in held:
        config = configs.get(reserve.asset)
        price = prices.get(reserve.asset)
        if isinstance(config, str) or config is None:
            problems.append(f"{reserve.asset} reserve parameters: {config or 'not read'}")
            continue
        if isinstance(price, str):
            problems.append(f"{reserve.asset} oracle price: {price}")
            price = None
        params = {
            "ltv_bps": str(config.ltv_bps),
            "liquidation_threshold_bps": str(config.liquidation_threshold_bps),
            "liquidation_bonus_bps": str(config.liquidation_bonus_bps),
            "usage_as_collateral": "true" if data.usage_as_collateral else "false",
        }
        usd = None if price is None else base_to_usd(price)
        for amount in (data.a_token_balance, -data.debt):
            if amount:
                assets.append(
                    VenueAsset(
                        asset=reserve.asset,
                        amount_raw=amount,
                        decimals=config.decimals,
                        price=usd,
                        params=params,
                        market=reserve.address,
                    )
                )
    own: dict[str, str] = {}
    if reported is not None:
        own = {
            "health_factor_wad": str(reported.health_factor_wad),
            "total_collateral_base": str(reported.total_collateral_base),
            "total_debt_base": str(reported.total_debt_base),
            "available_borrows_base": str(reported.available_borrows_base),
            "current_liquidation_threshold_bps": str(reported.current_liquidation_threshold_bps),
            "ltv_bps": str(reported.ltv_bps),
        }
    return VenueAccount(
        account=wallet,
        venue=venue,
        rules="aave_v3",
        assets=tuple(assets),
        params={"base_unit": str(USD_BASE_UNIT), "revision": pool.revision},
        reported=own,
        problem="; ".join(problems) or None,
    )


class AaveV3Section:
    """Per pool: each reserve's configuration and oracle price (for the venue view); per
    wallet: `getUserAccountData` on the pool, then `getUserReserveData` per reserve."""

    def __init__(self, pool: AavePool, wallets: Sequence[Address]) -> None:
        self._pool = pool
        self._venue = f"aave_v3:{pool.name}"
        self._wallets = tuple(wallets)
        pool20 = address_bytes(pool.pool)
        provider20 = address_bytes(pool.data_provider)
        calls: list[Call3] = []
        for reserve in pool.reserves:
            if reserve.address is None:
                raise ValueError(f"{self._venue}: reserve {reserve.asset} has no token address")
        if self._wallets:
            for reserve in pool.reserves:
                assert reserve.address is not None
                calls.append(Call3(provider20, reserve_configuration_calldata(reserve.address)))
            if pool.oracle is not None:
                oracle20 = address_bytes(pool.oracle)
                for reserve in pool.reserves:
                    assert reserve.address is not None
                    calls.append(Call3(oracle20, asset_price_calldata(reserve.address)))
        self._shared = len(calls)
        for wallet in self._wallets:
            calls.append(
                Call3(pool20, encode_address_call(GET_USER_ACCOUNT_DATA, address_bytes(wallet)))
            )
            for reserve in pool.reserves:
                assert reserve.address is not None
                calls.append(Call3(provider20, user_reserve_calldata(reserve.address, wallet)))
        self._calls = calls

    @property
    def calls(self) -> Sequence[Call3]:
        return self._calls

    def _pool_reads(
        self, results: Sequence[CallResult]
    ) -> tuple[dict[str, ReserveConfiguration | str], dict[str, int | str]]:
        reserves = self._pool.reserves
        configs: dict[str, ReserveConfiguration | str] = {}
        prices: dict[str, int | str] = {}
        for index, reserve in enumerate(reserves):
            result = results[index]
            try:
                if not result.success:
                    raise AbiDecodeError(describe_failure(result))
                configs[reserve.asset] = decode_reserve_configuration(result.return_data)
            except AbiDecodeError as exc:
                configs[reserve.asset] = str(exc)
        if self._pool.oracle is not None:
            for index, reserve in enumerate(reserves, start=len(reserves)):
                result = results[index]
                try:
                    if not result.success:
                        raise AbiDecodeError(describe_failure(result))
                    prices[reserve.asset] = decode_asset_price(result.return_data)
                except AbiDecodeError as exc:
                    prices[reserve.asset] = str(exc)
        return configs, prices

    def collect(self, results: Sequence[CallResult], parts: SnapshotParts) -> None:
        if not self._wallets:
            return
        configs, prices = self._pool_reads(results)
        for asset, config in configs.items():
            if isinstance(config, str):
                parts.issues.append(
                    LineIssue(asset, f"{self._venue}: {asset} reserve parameters: {config}")
                )
        stride = 1 + len(self._pool.reserves)
        for index, wallet in enumerate(self._wallets):
            base = self._shared + index * stride
            account_result = results[base]
            account: AccountData | None = None
            try:
                if not account_result.success:
                    raise AbiDecodeError(describe_failure(account_result))
                account = decode_account_data(account_result.return_data)
            except AbiDecodeError as exc:
                parts.issues.append(
                    LineIssue(wallet, f"{self._venue}: getUserAccountData skipped: {exc}")
                )
            else:
                parts.extra.update(account_extra(self._venue, wallet, account))
            held: list[tuple[EvmToken, UserReserve]] = []
            for offset, reserve in enumerate(self._pool.reserves, start=1):
                result = results[base + offset]
                try:
                    if not result.success:
                        raise AbiDecodeError(describe_failure(result))
                    user_reserve = decode_user_reserve(result.return_data)
                except AbiDecodeError as exc:
                    parts.issues.append(
                        LineIssue(wallet, f"{self._venue}: {reserve.asset} reserve skipped: {exc}")
                    )
                    continue
                parts.positions.extend(
                    reserve_positions(self._venue, wallet, reserve, user_reserve)
                )
                if user_reserve.a_token_balance or user_reserve.debt:
                    held.append((reserve, user_reserve))
            if held:
                parts.venue_accounts.append(
                    venue_account(self._pool, wallet, account, held, configs, prices)
                )
