"""What an EVM adapter needs to know about its chain: plain data, built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from chains.base import EndpointPolicy

MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"


@dataclass(frozen=True, slots=True)
class EvmToken:
    asset: str  # symbol from config
    address: str | None  # None for the native coin
    decimals: int


@dataclass(frozen=True, slots=True)
class ChainlinkFeed:
    asset: str
    address: str  # AggregatorV3Interface proxy


@dataclass(frozen=True, slots=True)
class AavePool:
    name: str  # venue suffix: positions carry venue "aave_v3:<name>"
    pool: str
    data_provider: str
    reserves: tuple[EvmToken, ...]  # underlying tokens to read per-reserve data for
    oracle: str | None = None  # AaveOracle: getAssetPrice, for the venue view
    revision: str = "v3-origin"  # GenericLogic rounding: "v3-core" or "v3-origin"


@dataclass(frozen=True, slots=True)
class EvmChainSpec:
    chain: str  # config key, e.g. "ethereum"
    chain_id: int
    endpoints: EndpointPolicy
    finality: str = "finalized"  # "finalized" | "safe" | "latest" | "latest-N"
    tokens: tuple[EvmToken, ...] = ()
    feeds: tuple[ChainlinkFeed, ...] = ()
    aave_pools: tuple[AavePool, ...] = ()
    multicall_address: str = MULTICALL3_ADDRESS
    calls_per_batch: int = 1000  # aggregate3 calls per eth_call, under provider limits

    @property
    def caip2(self) -> str:
        return f"eip155:{self.chain_id}"
