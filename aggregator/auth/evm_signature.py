"""EIP-191 `personal_sign` proofs from EVM accounts (externally owned accounts).

A 65-byte `r || s || v` signature over the UTF-8 text, recovered with eth_account
(`encode_defunct` + `Account.recover_message`) and compared to the claimed EIP-55 address.
Contract wallets sign differently (EIP-1271: see `eip1271`); `proof.verify_proof` picks.
"""

from __future__ import annotations

import re

from eth_account import Account
from eth_account.messages import SignableMessage, encode_defunct
from eth_utils.crypto import keccak

from aggregator.auth.errors import AuthError

EOA_SIGNATURE_BYTES = 65
# EIP-1271 wallets may return longer proofs (several owners' signatures); cap what we relay.
MAX_CONTRACT_SIGNATURE_BYTES = 4096
_HEX = re.compile(r"^0x(?:[0-9a-fA-F]{2})+$")


def decode_hex_signature(text: str, *, length: int | None = EOA_SIGNATURE_BYTES) -> bytes:
    """The bytes of a `0x`-hex signature, exactly `length` bytes long (any length up to
    MAX_CONTRACT_SIGNATURE_BYTES when `length` is None).

    May raise: AuthError (field `signature`, reason `malformed`).
    """
    too_long = isinstance(text, str) and len(text) > 2 + 2 * MAX_CONTRACT_SIGNATURE_BYTES
    if not isinstance(text, str) or too_long or not _HEX.match(text):
        raise AuthError("signature", "malformed", "the signature must be 0x-prefixed hex bytes")
    raw = bytes.fromhex(text[2:])
    if length is not None and len(raw) != length:
        raise AuthError(
            "signature", "malformed", f"the signature must be {length} bytes, got {len(raw)}"
        )
    if len(raw) > MAX_CONTRACT_SIGNATURE_BYTES:
        raise AuthError("signature", "malformed", "the signature is too long")
    return raw


def personal_sign_digest(text: str) -> bytes:
    """The 32-byte EIP-191 (version 0x45) hash a wallet signs for `text` — also what an
    EIP-1271 wallet is asked to validate."""
    return signable_digest(encode_defunct(text=text))


def signable_digest(signable: SignableMessage) -> bytes:
    """keccak256(0x19 || version || header || body): the hash an EIP-191 signature signs."""
    return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


def recover_signer(text: str, signature: bytes) -> str:
    """The EIP-55 address whose key made `signature` over `text`.

    May raise: AuthError (field `signature`: `malformed` for a wrong length, `bad_signature`
    for one that recovers no key).
    """
    if len(signature) != EOA_SIGNATURE_BYTES:
        raise AuthError(
            "signature", "malformed", f"the signature must be {EOA_SIGNATURE_BYTES} bytes"
        )
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception:  # eth_keys raises several types for a v, r or s out of range
        raise AuthError("signature", "bad_signature", "the signature recovers no key") from None


def verify_eoa_signature(text: str, address: str, signature: bytes) -> None:
    """Accept `signature` iff it is `address`'s personal_sign of `text`.

    May raise: AuthError (`malformed`, `bad_signature`, `wrong_signer`).
    """
    if recover_signer(text, signature) != address:
        raise AuthError("signature", "wrong_signer", "the signature is not from this account")
