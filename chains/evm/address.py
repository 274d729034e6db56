"""EVM account addresses: validation and EIP-55 normalisation.

Used by config validation and `wallets link`, so every message says what is wrong with the
address and, for a checksum mistake, what the correct spelling is.
"""

from __future__ import annotations

import re

from eth_utils.crypto import keccak

from chains.base import Address

_HEX_BODY = re.compile(r"[0-9a-fA-F]{40}")


class EvmAddressError(ValueError):
    """An address that is not a valid EVM address; the message says why."""


def to_checksum(address_hex40: str) -> str:
    """The EIP-55 spelling of a 40-hex-digit body (any case), with the 0x prefix."""
    body = address_hex40.lower()
    digest = keccak(text=body).hex()
    return "0x" + "".join(
        ch.upper() if ch.isalpha() and int(digest[i], 16) >= 8 else ch for i, ch in enumerate(body)
    )


def normalize_evm_address(value: str, *, require_checksum: bool = True) -> Address:
    """Return the EIP-55 spelling of `value`.

    A mixed-case address must carry a correct EIP-55 checksum (a wrong one is most likely a typo).
    An all-lowercase or all-uppercase address carries no checksum (unless it is its own EIP-55
    spelling): it is refused when `require_checksum` is True (the default, for config files and
    wallet links) and checksummed otherwise.
    May raise: EvmAddressError.
    """
    if not isinstance(value, str):
        raise EvmAddressError(f"EVM address must be a string, got {type(value).__name__}")
    text = value.strip()
    if text != value:
        raise EvmAddressError(f"EVM address {value!r} has leading or trailing whitespace")
    if not text.startswith(("0x", "0X")):
        raise EvmAddressError(f"EVM address {value!r} must start with 0x")
    body = text[2:]
    if len(body) != 40:
        raise EvmAddressError(
            f"EVM address {value!r} has {len(body)} hex digits after 0x; expected 40 (20 bytes)"
        )
    if not _HEX_BODY.fullmatch(body):
        raise EvmAddressError(f"EVM address {value!r} contains characters that are not hex digits")
    expected = to_checksum(body)
    letters = [ch for ch in body if ch.isalpha()]
    mixed_case = any(ch.islower() for ch in letters) and any(ch.isupper() for ch in letters)
    if mixed_case:
        if "0x" + body != expected:
            raise EvmAddressError(
                f"EVM address {value!r} has an invalid EIP-55 checksum (expected {expected})"
            )
        return Address(expected)
    # Single-case: a checksum only when EIP-55 spells it so (one address in a few hundred has
    # every letter lowercase in its checksummed form).
    if require_checksum and letters and text != expected:
        raise EvmAddressError(
            f"EVM address {value!r} is not EIP-55 checksummed (expected {expected})"
        )
    return Address(expected)


def is_evm_address(value: str) -> bool:
    """True when `value` is a valid EIP-55 address (or one with no letters to checksum)."""
    try:
        normalize_evm_address(value)
    except EvmAddressError:
        return False
    return True


def address_bytes(value: str) -> bytes:
    """The 20 bytes of a 0x-hex address, without checking its checksum.

    May raise: EvmAddressError.
    """
    if len(value) != 42 or not value.startswith(("0x", "0X")):
        raise EvmAddressError(f"EVM address {value!r} is not 0x followed by 40 hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise EvmAddressError(
            f"EVM address {value!r} contains characters that are not hex digits"
        ) from None
