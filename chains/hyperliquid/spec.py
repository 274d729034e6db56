"""What a Hyperliquid adapter needs to know about its venue: plain data, built by the
composition root.

HyperCore has no CAIP-2 namespace (ChainAgnostic/namespaces has none); xmargin names it
`hypercore:<network>` (`hypercore:mainnet`, `hypercore:testnet`, and `hypercore:localnet` for
the local world), as coinbase's x402 spec writes it. Accounts are EVM addresses (EIP-55).
"""

from __future__ import annotations

from dataclasses import dataclass

from chains.base import EndpointPolicy

MAINNET_INFO_URL = "https://api.hyperliquid.xyz/info"
TESTNET_INFO_URL = "https://api.hyperliquid-testnet.xyz/info"

# Hyperliquid's documented request weights (rate-limits-and-user-limits.md): per IP, REST
# requests share 1,200 weight per minute.
WEIGHT_PER_MINUTE = 1200
WEIGHT_CLEARINGHOUSE_STATE = 2
WEIGHT_SPOT_CLEARINGHOUSE_STATE = 2
WEIGHT_META_AND_ASSET_CTXS = 20
WEIGHT_USER_ABSTRACTION = 20  # "every other documented info request"
WEIGHT_PER_USER = WEIGHT_CLEARINGHOUSE_STATE + WEIGHT_SPOT_CLEARINGHOUSE_STATE


@dataclass(frozen=True, slots=True)
class PerpCoin:
    """A perp market (`coin` as HyperCore names it) whose positions count as `asset`."""

    coin: str
    asset: str


@dataclass(frozen=True, slots=True)
class SpotToken:
    """A spot token (`coin` as spotClearinghouseState names it) held as `asset`."""

    coin: str
    asset: str
    decimals: int  # base units of the stored amount (the token's weiDecimals, e.g. USDC 8)


@dataclass(frozen=True, slots=True)
class PriceCoin:
    """An asset priced by a perp market's oracle price (`oraclePx`)."""

    coin: str
    asset: str


@dataclass(frozen=True, slots=True)
class HyperliquidChainSpec:
    chain: str  # config key, e.g. "hyperliquid"
    network: str  # "mainnet" | "testnet" | "localnet"
    endpoints: EndpointPolicy
    perp_coins: tuple[PerpCoin, ...] = ()
    spot_tokens: tuple[SpotToken, ...] = ()
    price_coins: tuple[PriceCoin, ...] = ()
    cash_asset: str | None = "USDC"  # the asset perp USD cash (totalRawUsd) counts as
    cash_decimals: int = 8
    # Weight budget per endpoint URL, over a sliding window (60 s on the real venue; the
    # benchmark shrinks the window to scale the budget to its run).
    weight_per_minute: int = WEIGHT_PER_MINUTE
    budget_window_seconds: float = 60.0
    # A poll waits for budget that frees within this long, then stops (cut short).
    budget_wait_seconds: float = 2.0
    read_abstraction: bool = True  # userAbstraction per user, cached below
    abstraction_ttl_seconds: float = 3600.0
    concurrent_users: int = 16

    @property
    def caip2(self) -> str:
        return f"hypercore:{self.network}"
