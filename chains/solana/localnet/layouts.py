"""Real-layout bytes the local chain writes beyond what `chains.solana.decoders` encodes: a
Drift PerpMarket, and the oracle fields of Drift markets, MarginFi banks and Kamino reserves.

Offsets are those `chains.solana.decoders` and `chains.solana.venues` read (each module
documents where they come from); tests/unit/solana/test_solana_localnet_layouts.py checks them
against the real mainnet accounts in tests/fixtures/solana/real_accounts.

- Drift PerpMarket (1216 bytes): pubkey @8, amm.oracle @40, amm.oracle_source u8 @926, name
  [u8;32] @1000, imf_factor u32 @1120, unrealized_pnl_imf_factor @1124, liquidator_fee @1128,
  if_liquidation_fee @1132, margin_ratio_initial @1136, margin_ratio_maintenance @1140,
  unrealized_pnl_initial_asset_weight @1144, unrealized_pnl_maintenance_asset_weight @1148,
  market_index u16 @1160, status u8 @1162, high_leverage_margin_ratio_initial / _maintenance
  u16 @1174 / @1176.
- Drift SpotMarket: oracle @40, oracle_source u8 @687.
- MarginFi Bank: config.oracle_setup u8 @609, config.oracle_keys [Pubkey; 5] @610.
- Kamino Reserve: liquidity.market_price_sf u128 @248, market_price_last_updated_ts u64 @264.
"""

from __future__ import annotations

import struct

from solders.pubkey import Pubkey

from chains.solana.decoders import drift, marginfi
from chains.solana.venues import DRIFT_ORACLE_SOURCES

PERP_ORACLE_SOURCE = 926
SPOT_ORACLE, SPOT_ORACLE_SOURCE = 40, 687
BANK_ORACLE_SETUP, BANK_ORACLE_KEYS = 609, 610
RESERVE_MARKET_PRICE_SF, RESERVE_MARKET_PRICE_TS = 248, 264
MARKET_STATUS_ACTIVE = 1


def drift_oracle_source(name: str) -> int:
    """The u8 of a Drift `OracleSource` name. May raise: ValueError (unknown name)."""
    return DRIFT_ORACLE_SOURCES.index(name)


def encode_drift_perp_market(
    *,
    address: Pubkey,
    market_index: int,
    oracle: Pubkey,
    oracle_source: str,
    name: str = "",
    margin_ratio_initial: int,
    margin_ratio_maintenance: int,
    imf_factor: int = 0,
    unrealized_pnl_imf_factor: int = 0,
    liquidator_fee: int = 0,
    if_liquidation_fee: int = 0,
    unrealized_pnl_initial_asset_weight: int = 0,
    unrealized_pnl_maintenance_asset_weight: int = drift.MARGIN_PRECISION,
    status: int = MARKET_STATUS_ACTIVE,
    high_leverage_margin_ratios: tuple[int, int] = (0, 0),
) -> bytes:
    """A PerpMarket with the real layout (ratios and weights in 1e4, imf factors and fees in
    1e6); the AMM and every other field stay zero. May raise: ValueError (unknown source)."""
    buffer = bytearray(drift.PERP_MARKET_LEN)
    buffer[:8] = drift.PERP_MARKET_DISCRIMINATOR
    buffer[8:40] = bytes(address)
    buffer[40:72] = bytes(oracle)
    buffer[PERP_ORACLE_SOURCE] = drift_oracle_source(oracle_source)
    buffer[1000:1032] = name.encode()[:32].ljust(32, b" ")
    struct.pack_into(
        "<IIIIIIII", buffer, 1120,
        imf_factor, unrealized_pnl_imf_factor, liquidator_fee, if_liquidation_fee,
        margin_ratio_initial, margin_ratio_maintenance,
        unrealized_pnl_initial_asset_weight, unrealized_pnl_maintenance_asset_weight,
    )  # fmt: skip
    struct.pack_into("<HB", buffer, 1160, market_index, status)
    struct.pack_into("<HH", buffer, 1174, *high_leverage_margin_ratios)
    return bytes(buffer)


def with_spot_oracle_source(data: bytes, oracle_source: str) -> bytes:
    """A SpotMarket's bytes with `oracle_source` set. May raise: ValueError (unknown source)."""
    buffer = bytearray(data)
    buffer[SPOT_ORACLE_SOURCE] = drift_oracle_source(oracle_source)
    return bytes(buffer)


def with_bank_oracle(data: bytes, oracle_setup: str, oracle_keys: tuple[Pubkey, ...]) -> bytes:
    """A Bank's bytes with `config.oracle_setup` and up to 5 `config.oracle_keys` (the rest
    default keys). May raise: ValueError (unknown setup, more than 5 keys)."""
    if len(oracle_keys) > 5:
        raise ValueError("a MarginFi bank holds at most 5 oracle keys")
    buffer = bytearray(data)
    buffer[BANK_ORACLE_SETUP] = marginfi.ORACLE_SETUPS.index(oracle_setup)
    keys = b"".join(bytes(key) for key in oracle_keys)
    buffer[BANK_ORACLE_KEYS : BANK_ORACLE_KEYS + 160] = keys.ljust(160, b"\x00")
    return bytes(buffer)


def with_reserve_market_price(data: bytes, market_price_sf: int, updated_ts: int) -> bytes:
    """A Reserve's bytes with `liquidity.market_price_sf` (USD per whole token x 2**60) and
    `market_price_last_updated_ts` set."""
    buffer = bytearray(data)
    mask = (1 << 64) - 1
    struct.pack_into(
        "<QQQ", buffer, RESERVE_MARKET_PRICE_SF,
        market_price_sf & mask, market_price_sf >> 64, updated_ts,
    )  # fmt: skip
    return bytes(buffer)
