"""The service's attestation signing key: from `XMARGIN_SIGNING_KEY` (hex) or the file named by
`XMARGIN_SIGNING_KEY_FILE`. Without either, attestations are unavailable (None); a malformed
one is an error whose message names where it came from, never the key. The loaded key's repr
and str show its address only, and it refuses to be pickled.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from aggregator.errors import XmarginError

SIGNING_KEY_ENV = "XMARGIN_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "XMARGIN_SIGNING_KEY_FILE"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX_KEY = re.compile(r"^(?:0x)?[0-9a-fA-F]{64}$")


class SigningKeyError(XmarginError):
    """The signing key is set but unusable; the message says where it came from and why."""


class SigningKey:
    """A secp256k1 key that signs EIP-712 typed data."""

    __slots__ = ("_account", "address")

    def __init__(self, private_key: bytes) -> None:
        """May raise: SigningKeyError (not 32 bytes, or outside 1..n-1)."""
        if len(private_key) != 32 or not 0 < int.from_bytes(private_key, "big") < SECP256K1_ORDER:
            raise SigningKeyError("a signing key is 32 bytes, between 1 and the curve order - 1")
        self._account: LocalAccount = Account.from_key(private_key)
        self.address: str = str(self._account.address)

    def sign_typed_data(self, typed_data: dict[str, Any]) -> tuple[bytes, bytes]:
        """The EIP-712 digest of `typed_data` and the 65-byte `r || s || v` signature of it
        (v = 27 or 28).

        May raise: ValueError, TypeError (typed data eth_account cannot encode).
        """
        signed = self._account.sign_message(encode_typed_data(full_message=typed_data))
        return bytes(signed.message_hash), bytes(signed.signature)

    def __repr__(self) -> str:
        return f"SigningKey(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SigningKey cannot be pickled")


def parse_signing_key(text: str, source: str) -> SigningKey:
    """The key `text` spells (64 hex digits, optional 0x, surrounding whitespace ignored).

    May raise: SigningKeyError (naming `source`, never the text).
    """
    stripped = text.strip()
    if not _HEX_KEY.match(stripped):
        raise SigningKeyError(f"{source}: the signing key must be 64 hex digits (32 bytes)")
    try:
        return SigningKey(bytes.fromhex(stripped.removeprefix("0x")))
    except SigningKeyError:
        raise SigningKeyError(f"{source}: the signing key is not a valid secp256k1 key") from None


def load_signing_key(environ: Mapping[str, str] | None = None) -> SigningKey | None:
    """The key from `XMARGIN_SIGNING_KEY`, else from the file `XMARGIN_SIGNING_KEY_FILE`
    names; None when neither is set.

    May raise: SigningKeyError (both set, an unreadable file, or a malformed key).
    """
    environ = os.environ if environ is None else environ
    inline = environ.get(SIGNING_KEY_ENV, "")
    file_name = environ.get(SIGNING_KEY_FILE_ENV, "").strip()
    if inline.strip() and file_name:
        raise SigningKeyError(f"set {SIGNING_KEY_ENV} or {SIGNING_KEY_FILE_ENV}, not both")
    if inline.strip():
        return parse_signing_key(inline, SIGNING_KEY_ENV)
    if not file_name:
        return None
    try:
        text = Path(file_name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SigningKeyError(
            f"{SIGNING_KEY_FILE_ENV}={file_name}: cannot read ({reason})"
        ) from None
    return parse_signing_key(text, f"{SIGNING_KEY_FILE_ENV}={file_name}")
