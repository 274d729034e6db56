"""Pyth oracle accounts: the pull-oracle `PriceUpdateV2` and the legacy push price account.

PriceUpdateV2 (pyth-crosschain pyth_solana_receiver_sdk price_update.rs), Anchor account:
discriminator(8) write_authority(32) verification_level(Borsh enum) price_message(84)
posted_slot u64. The enum tag at byte 40 is 0 = Partial (followed by a u8 num_signatures) or
1 = Full (no payload), so the price message starts at byte 42 (Partial) or 41 (Full).

Legacy price account (pyth-sdk-solana state.rs): decoded here to the upstream expected values,
but the adapter rejects it as a price source: it has no feed id to verify and legacy push
accounts on Solana mainnet were deprecated in favour of PriceUpdateV2.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError

PRICE_UPDATE_V2_DISCRIMINATOR = bytes.fromhex("22f123639d7ef4cd")
PRICE_UPDATE_V2_LEN = 134
LEGACY_MAGIC = 0xA1B2C3D4
_LEGACY_PRICE_ATYPE = 3
_LEGACY_HEADER_LEN = 240
_LEGACY_COMPONENT_LEN = 96
_MESSAGE = struct.Struct("<32sqQiqqqQ")  # feed_id price conf expo publish prev ema_price ema_conf

VerificationLevel = Literal["Full", "Partial"]


@dataclass(frozen=True, slots=True)
class PriceUpdateV2:
    """One decoded PriceUpdateV2 account; `price`/`conf` are raw integers scaled by 10**exponent."""

    write_authority: str
    verification_level: VerificationLevel
    num_signatures: int | None  # Partial only
    feed_id: str  # 0x-hex
    price: int
    conf: int
    exponent: int
    publish_time: int
    prev_publish_time: int
    ema_price: int
    ema_conf: int
    posted_slot: int

    @property
    def price_decimal(self) -> Decimal:
        return Decimal(self.price).scaleb(self.exponent)

    @property
    def conf_decimal(self) -> Decimal:
        return Decimal(self.conf).scaleb(self.exponent)


def decode_price_update_v2(data: bytes) -> PriceUpdateV2:
    """Decode a PriceUpdateV2 account, honouring the variable-length verification level.

    May raise: AccountDecodeError (wrong discriminator, size or verification tag).
    """
    if data[:8] != PRICE_UPDATE_V2_DISCRIMINATOR:
        raise AccountDecodeError("not a PriceUpdateV2 account (discriminator mismatch)")
    if len(data) < PRICE_UPDATE_V2_LEN - 1:
        raise AccountDecodeError(f"PriceUpdateV2 is {len(data)} bytes, expected 134")
    tag = data[40]
    level: VerificationLevel
    if tag == 0:
        level, num_signatures, start = "Partial", data[41], 42
    elif tag == 1:
        level, num_signatures, start = "Full", None, 41
    else:
        raise AccountDecodeError(f"PriceUpdateV2 verification level tag {tag} is unknown")
    feed, price, conf, expo, publish, prev_publish, ema_price, ema_conf = _MESSAGE.unpack_from(
        data, start
    )
    (posted_slot,) = struct.unpack_from("<Q", data, start + _MESSAGE.size)
    return PriceUpdateV2(
        write_authority=str(Pubkey.from_bytes(data[8:40])),
        verification_level=level,
        num_signatures=num_signatures,
        feed_id="0x" + feed.hex(),
        price=price,
        conf=conf,
        exponent=expo,
        publish_time=publish,
        prev_publish_time=prev_publish,
        ema_price=ema_price,
        ema_conf=ema_conf,
        posted_slot=posted_slot,
    )


def encode_price_update_v2(
    *,
    write_authority: Pubkey,
    feed_id: bytes,
    price: int,
    conf: int,
    exponent: int,
    publish_time: int,
    posted_slot: int,
    verification_level: VerificationLevel = "Full",
    num_signatures: int = 0,
) -> bytes:
    """The 134-byte account layout (for local test chains): Full pads one trailing zero byte."""
    level = b"\x01" if verification_level == "Full" else b"\x00" + bytes([num_signatures])
    message = _MESSAGE.pack(feed_id, price, conf, exponent, publish_time, publish_time, price, conf)
    body = (
        PRICE_UPDATE_V2_DISCRIMINATOR
        + bytes(write_authority)
        + level
        + message
        + struct.pack("<Q", posted_slot)
    )
    return body + bytes(PRICE_UPDATE_V2_LEN - len(body))


@dataclass(frozen=True, slots=True)
class LegacyPriceComponent:
    publisher: str
    agg_price: int
    agg_conf: int
    agg_status: int
    agg_pub_slot: int
    latest_price: int
    latest_conf: int
    latest_status: int
    latest_pub_slot: int


@dataclass(frozen=True, slots=True)
class LegacyPriceAccount:
    """A legacy (v2 magic) Pyth price account; only `agg` with status 1 (Trading) is a price."""

    exponent: int
    num_components: int
    last_slot: int
    valid_slot: int
    timestamp: int
    min_publishers: int
    max_latency: int
    product_account: str
    next_price_account: str | None
    agg_price: int
    agg_conf: int
    agg_status: int
    agg_pub_slot: int
    components: tuple[LegacyPriceComponent, ...]

    @property
    def price_decimal(self) -> Decimal:
        return Decimal(self.agg_price).scaleb(self.exponent)

    @property
    def conf_decimal(self) -> Decimal:
        return Decimal(self.agg_conf).scaleb(self.exponent)


def is_legacy_price_account(data: bytes) -> bool:
    """True when the bytes start with the legacy Pyth magic number."""
    return len(data) >= 4 and struct.unpack_from("<I", data, 0)[0] == LEGACY_MAGIC


def decode_legacy_price_account(data: bytes) -> LegacyPriceAccount:
    """Decode a legacy Pyth price account (magic 0xa1b2c3d4, version 2, account type 3).

    May raise: AccountDecodeError (bad magic, version, account type or size).
    """
    if len(data) < _LEGACY_HEADER_LEN:
        raise AccountDecodeError(f"legacy Pyth account is {len(data)} bytes, too short")
    magic, version, atype, _size = struct.unpack_from("<IIII", data, 0)
    if magic != LEGACY_MAGIC or version != 2 or atype != _LEGACY_PRICE_ATYPE:
        raise AccountDecodeError(
            f"not a legacy Pyth price account (magic {magic:#x}, version {version}, type {atype})"
        )
    (expo, num, _num_qt, last_slot, valid_slot) = struct.unpack_from("<iIIQQ", data, 20)
    (timestamp,) = struct.unpack_from("<q", data, 96)
    min_pub, max_latency = data[104], data[106]
    product = Pubkey.from_bytes(data[112:144])
    next_key = Pubkey.from_bytes(data[144:176])
    agg_price, agg_conf = struct.unpack_from("<qQ", data, 208)
    agg_status = data[224]
    (agg_pub_slot,) = struct.unpack_from("<Q", data, 232)
    if len(data) < _LEGACY_HEADER_LEN + num * _LEGACY_COMPONENT_LEN:
        raise AccountDecodeError(f"legacy Pyth account too short for {num} components")
    components = []
    for index in range(num):
        base = _LEGACY_HEADER_LEN + index * _LEGACY_COMPONENT_LEN
        a_price, a_conf, a_status, _a_corp, a_slot = struct.unpack_from("<qQIIQ", data, base + 32)
        l_price, l_conf, l_status, _l_corp, l_slot = struct.unpack_from("<qQIIQ", data, base + 64)
        components.append(
            LegacyPriceComponent(
                publisher=str(Pubkey.from_bytes(data[base : base + 32])),
                agg_price=a_price,
                agg_conf=a_conf,
                agg_status=a_status,
                agg_pub_slot=a_slot,
                latest_price=l_price,
                latest_conf=l_conf,
                latest_status=l_status,
                latest_pub_slot=l_slot,
            )
        )
    return LegacyPriceAccount(
        exponent=expo,
        num_components=num,
        last_slot=last_slot,
        valid_slot=valid_slot,
        timestamp=timestamp,
        min_publishers=min_pub,
        max_latency=max_latency,
        product_account=str(product),
        next_price_account=None if next_key == Pubkey.default() else str(next_key),
        agg_price=agg_price,
        agg_conf=agg_conf,
        agg_status=agg_status,
        agg_pub_slot=agg_pub_slot,
        components=tuple(components),
    )
