"""ed25519 proofs from Solana accounts: a 64-byte signature, base58, over the UTF-8 text
(what wallets' `signMessage` returns), verified with solders."""

from __future__ import annotations

from solders.pubkey import Pubkey
from solders.signature import Signature

from aggregator.auth.errors import AuthError

_BASE58 = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


def decode_solana_signature(text: str) -> Signature:
    """The signature a canonical base58 string of 64 bytes spells.

    May raise: AuthError (field `signature`, reason `malformed`).
    """
    if not isinstance(text, str) or not text or not set(text) <= _BASE58 or len(text) > 90:
        raise AuthError("signature", "malformed", "the signature must be base58 text")
    try:
        signature = Signature.from_string(text)
    except ValueError:
        raise AuthError("signature", "malformed", "the signature must be 64 bytes") from None
    if str(signature) != text:
        raise AuthError("signature", "malformed", "the signature is not canonical base58")
    return signature


def verify_ed25519(text: str, address: str, signature: Signature) -> None:
    """Accept `signature` iff the key `address` (base58) signed the UTF-8 bytes of `text`.

    May raise: AuthError (`malformed` address, `wrong_signer`).
    """
    try:
        key = Pubkey.from_string(address)
    except ValueError:
        raise AuthError("address", "malformed", "the address is not a Solana public key") from None
    if not signature.verify(key, text.encode("utf-8")):
        raise AuthError("signature", "wrong_signer", "the signature is not from this account")
