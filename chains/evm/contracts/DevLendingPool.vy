# pragma version 0.4.3
"""
@title DevLendingPool
@notice The subset of the Aave v3 Pool, PoolDataProvider and AaveOracle ABI that xmargin reads,
        on one contract: `getUserAccountData(user)`, `getUserReserveData(asset, user)`,
        `getReserveConfigurationData(asset)` and `getAssetPrice(asset)`. Positions are set by
        the deployer (seeding, no token movement). Account totals follow aave-v3-core
        GenericLogic.calculateUserAccountData: values in base currency (1e8 USD) from the
        reserve's price feed rounded down, collateral counted only for a reserve with a non-zero
        liquidation threshold, liquidation threshold and LTV as value-weighted averages in bps
        (rounded down), health factor = percentMul(collateral, threshold) wadDiv debt (both
        half-up) in WAD, available borrows = percentMul(collateral, ltv) - debt.
"""

interface PriceFeed:
    def latestRoundData() -> (uint80, int256, uint256, uint256, uint80): view

struct ReserveConfig:
    feed: address
    decimals: uint8
    ltv: uint256
    liquidation_threshold: uint256

MAX_RESERVES: constant(uint256) = 16
PERCENTAGE_FACTOR: constant(uint256) = 10000
HALF_PERCENTAGE_FACTOR: constant(uint256) = 5000
WAD: constant(uint256) = 10 ** 18
BASE_CURRENCY_UNIT: public(constant(uint256)) = 10 ** 8
# Not configurable on the devnet: every reserve reports these in getReserveConfigurationData.
LIQUIDATION_BONUS: constant(uint256) = 10500
RESERVE_FACTOR: constant(uint256) = 1000

owner: public(address)
reserves: public(DynArray[address, MAX_RESERVES])
reserve_config: public(HashMap[address, ReserveConfig])
supplied: public(HashMap[address, HashMap[address, uint256]])
borrowed: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__():
    self.owner = msg.sender


@external
def add_reserve(asset: address, feed: address, decimals: uint8, ltv: uint256, liquidation_threshold: uint256):
    assert msg.sender == self.owner, "only owner"
    assert self.reserve_config[asset].feed == empty(address), "reserve exists"
    assert ltv <= liquidation_threshold and liquidation_threshold <= PERCENTAGE_FACTOR, "bad bps"
    self.reserves.append(asset)
    self.reserve_config[asset] = ReserveConfig(
        feed=feed, decimals=decimals, ltv=ltv, liquidation_threshold=liquidation_threshold
    )


@external
def set_supply(asset: address, user: address, amount: uint256):
    assert msg.sender == self.owner, "only owner"
    assert self.reserve_config[asset].feed != empty(address), "unknown reserve"
    self.supplied[asset][user] = amount


@external
def set_borrow(asset: address, user: address, amount: uint256):
    assert msg.sender == self.owner, "only owner"
    assert self.reserve_config[asset].feed != empty(address), "unknown reserve"
    self.borrowed[asset][user] = amount


@view
@internal
def _price(feed: address) -> uint256:
    answer: int256 = 0
    round_id: uint80 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in_round: uint80 = 0
    round_id, answer, started_at, updated_at, answered_in_round = staticcall PriceFeed(feed).latestRoundData()
    assert answer > 0, "bad price"
    return convert(answer, uint256)


@pure
@internal
def _percent_mul(amount: uint256, percentage: uint256) -> uint256:
    # PercentageMath.percentMul: half-up
    return (amount * percentage + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


@pure
@internal
def _wad_div(a: uint256, b: uint256) -> uint256:
    # WadRayMath.wadDiv: half-up
    return (a * WAD + b // 2) // b


@view
@external
def getUserAccountData(user: address) -> (uint256, uint256, uint256, uint256, uint256, uint256):
    total_collateral: uint256 = 0
    total_debt: uint256 = 0
    weighted_threshold: uint256 = 0
    weighted_ltv: uint256 = 0
    for asset: address in self.reserves:
        supplied: uint256 = self.supplied[asset][user]
        borrowed: uint256 = self.borrowed[asset][user]
        if supplied == 0 and borrowed == 0:
            continue
        config: ReserveConfig = self.reserve_config[asset]
        price: uint256 = self._price(config.feed)
        unit: uint256 = 10 ** convert(config.decimals, uint256)
        if supplied > 0 and config.liquidation_threshold != 0:
            value: uint256 = supplied * price // unit
            total_collateral += value
            weighted_threshold += value * config.liquidation_threshold
            weighted_ltv += value * config.ltv
        if borrowed > 0:
            total_debt += borrowed * price // unit
    threshold: uint256 = 0
    ltv: uint256 = 0
    if total_collateral > 0:
        threshold = weighted_threshold // total_collateral
        ltv = weighted_ltv // total_collateral
    available: uint256 = 0
    borrowable: uint256 = self._percent_mul(total_collateral, ltv)
    if borrowable > total_debt:
        available = borrowable - total_debt
    health: uint256 = max_value(uint256)
    if total_debt > 0:
        health = self._wad_div(self._percent_mul(total_collateral, threshold), total_debt)
    return (total_collateral, total_debt, available, threshold, ltv, health)


@view
@external
def getUserReserveData(asset: address, user: address) -> (uint256, uint256, uint256, uint256, uint256, uint256, uint256, uint40, bool):
    supplied: uint256 = self.supplied[asset][user]
    borrowed: uint256 = self.borrowed[asset][user]
    return (supplied, 0, borrowed, 0, borrowed, 0, 0, 0, supplied > 0)


@view
@external
def getReserveConfigurationData(asset: address) -> (uint256, uint256, uint256, uint256, uint256, bool, bool, bool, bool, bool):
    # (decimals, ltv, liquidationThreshold, liquidationBonus, reserveFactor,
    #  usageAsCollateralEnabled, borrowingEnabled, stableBorrowRateEnabled, isActive, isFrozen);
    # all zero / false for an asset that is not a reserve
    config: ReserveConfig = self.reserve_config[asset]
    if config.feed == empty(address):
        return (0, 0, 0, 0, 0, False, False, False, False, False)
    return (
        convert(config.decimals, uint256),
        config.ltv,
        config.liquidation_threshold,
        LIQUIDATION_BONUS,
        RESERVE_FACTOR,
        config.liquidation_threshold != 0,
        True,
        False,
        True,
        False,
    )


@view
@external
def getAssetPrice(asset: address) -> uint256:
    # AaveOracle.getAssetPrice: the reserve's feed answer in base currency units (1e8 USD)
    config: ReserveConfig = self.reserve_config[asset]
    assert config.feed != empty(address), "unknown reserve"
    return self._price(config.feed)
