"""Account validation per chain family, and CAIP-10 account ids."""

from __future__ import annotations

from solders.pubkey import Pubkey

from chains.evm.address import EvmAddressError, normalize_evm_address


class AddressError(ValueError):
    """An address that is not valid for its chain family; the message says why."""


def normalize_address(family: str, value: str, *, require_checksum: bool = True) -> str:
    """Return the canonical spelling of `value` on `family` ("evm", "solana", or "hyperliquid",
    whose accounts are EVM addresses).

    EVM addresses must be EIP-55 checksummed; with `require_checksum=False` an all-lowercase
    (or all-uppercase) address is accepted and checksummed, but a mixed-case one with a wrong
    checksum is still refused (it is most likely a typo).
    May raise: AddressError.
    """
    if family in ("evm", "hyperliquid"):
        try:
            return normalize_evm_address(value, require_checksum=require_checksum)
        except EvmAddressError as exc:
            raise AddressError(str(exc)) from None
    if family == "solana":
        try:
            key = Pubkey.from_string(value)
        except ValueError:
            raise AddressError(f"{value!r} is not a base58 Solana public key") from None
        if str(key) != value:
            raise AddressError(f"{value!r} is not a canonical base58 Solana public key")
        return value
    raise AddressError(f"unknown chain family {family!r}")


def caip10(caip2: str, address: str) -> str:
    """The CAIP-10 account id: `eip155:1:0xAbC…`, `solana:5eykt…:Base58`,
    `hypercore:mainnet:0xAbC…`."""
    return f"{caip2}:{address}"
