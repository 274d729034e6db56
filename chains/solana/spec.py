"""What a Solana adapter needs to know about its chain.

Plain data, built by the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from chains.base import EndpointPolicy

MAINNET_GENESIS = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
SPL_TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
PYTH_RECEIVER_PROGRAM = "rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ"
PYTH_PUSH_ORACLE_PROGRAM = "pythWSnswVUd12oZpeFP8e9CVaEqJg25g1Vtc2biRsT"


@dataclass(frozen=True, slots=True)
class SplMint:
    asset: str
    mint: str
    decimals: int
    token_program: str = SPL_TOKEN_PROGRAM  # or TOKEN_2022_PROGRAM


@dataclass(frozen=True, slots=True)
class PythFeed:
    asset: str
    account: str  # PriceUpdateV2 account
    feed_id: str  # 0x-hex 32 bytes
    owners: tuple[str, ...] = (PYTH_RECEIVER_PROGRAM, PYTH_PUSH_ORACLE_PROGRAM)
    max_conf_ratio: Decimal = Decimal("0.10")  # conf / price above this: invalid
    max_age_seconds: int = 300  # publish_time older than the slot's block time by more: invalid


@dataclass(frozen=True, slots=True)
class DriftSpotMarket:
    market_index: int
    asset: str
    decimals: int
    account: str  # SpotMarket account (cumulative interest lives here)


@dataclass(frozen=True, slots=True)
class DriftPerpMarket:
    market_index: int
    asset: str  # base asset symbol


@dataclass(frozen=True, slots=True)
class DriftVenue:
    program_id: str
    spot_markets: tuple[DriftSpotMarket, ...] = ()
    perp_markets: tuple[DriftPerpMarket, ...] = ()
    sub_account_ids: tuple[int, ...] = (0,)  # User PDAs read per wallet


@dataclass(frozen=True, slots=True)
class KaminoReserve:
    reserve: str  # reserve account address
    asset: str
    decimals: int


@dataclass(frozen=True, slots=True)
class KaminoVenue:
    program_id: str
    reserves: tuple[KaminoReserve, ...] = ()
    lending_markets: tuple[str, ...] = ()  # vanilla Obligation PDAs derived per wallet and market


@dataclass(frozen=True, slots=True)
class MarginfiBank:
    bank: str  # Bank account address
    asset: str
    decimals: int


@dataclass(frozen=True, slots=True)
class MarginfiVenue:
    program_id: str
    group: str  # MarginfiGroup address: accounts and banks of other groups are refused
    banks: tuple[MarginfiBank, ...] = ()
    account_indexes: tuple[int, ...] = (0,)  # PDA accounts derived per wallet (third party 0)
    # getProgramAccounts per wallet (filters: size, group, authority; keys only), for accounts
    # created as keypairs, which cannot be derived
    discover_accounts: bool = True


@dataclass(frozen=True, slots=True)
class SolanaChainSpec:
    chain: str  # config key, e.g. "solana"
    genesis_hash: str  # CAIP-2 reference: first 32 chars of the genesis hash
    endpoints: EndpointPolicy
    commitment: str = "finalized"  # "finalized" | "confirmed"
    native_asset: str = "SOL"
    mints: tuple[SplMint, ...] = ()
    feeds: tuple[PythFeed, ...] = ()
    drift: DriftVenue | None = None
    kamino: KaminoVenue | None = None
    marginfi: MarginfiVenue | None = None
    accounts_per_request: int = 100
    # getTokenAccountsByOwner per wallet and token program, for token accounts that are not ATAs
    discover_token_accounts: bool = True
    # read each wallet account for its native balance (off: token and protocol lines only)
    native_balances: bool = True

    @property
    def caip2(self) -> str:
        return f"solana:{self.genesis_hash[:32]}"
