"""Reference data as the store receives it from config: small frozen values, no config import.

The composition root maps `aggregator.config` models onto these; the store never reads config.
"""

from __future__ import annotations

from dataclasses import dataclass

NATIVE = "native"
"""The `address` of an asset deployment that is the chain's native coin."""


@dataclass(frozen=True, slots=True)
class ChainRef:
    key: str  # config key, e.g. "ethereum"
    caip2: str  # e.g. "eip155:1"
    family: str  # "evm" | "solana"


@dataclass(frozen=True, slots=True)
class AssetRef:
    symbol: str
    family: str  # risk family: "ETH", "BTC", "SOL", "USD", ...
    stable: bool = False


@dataclass(frozen=True, slots=True)
class DeploymentRef:
    asset: str
    chain: str
    address: str  # contract address, mint, or NATIVE
    decimals: int
    token_program: str | None = None  # Solana: "spl_token" | "token_2022"


@dataclass(frozen=True, slots=True)
class PriceSourceRef:
    asset: str
    chain: str
    kind: str  # "chainlink" | "pyth" | ...
    address: str  # Chainlink proxy or Pyth price account
    feed_id: str | None = None  # Pyth feed id
