"""One entry point for an ownership proof: a signed text and its signature, checked against
what this request expects, with the right scheme for the account.

- Solana: ed25519 over the text (`solana_signature`).
- EVM: a 65-byte personal_sign recovered to the account (an EOA, or an EIP-7702 account whose
  key still signs); otherwise, when the account holds code at a pinned block, the wallet's own
  `isValidSignature` (EIP-1271) on the EIP-191 digest of the text, read at that block.

The nonce is not checked here: the store consumes it in the transaction that links
(`aggregator.store.accounts.auth.consume_nonce`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx

from aggregator.auth import eip1271
from aggregator.auth.errors import AuthError
from aggregator.auth.evm_signature import (
    EOA_SIGNATURE_BYTES,
    decode_hex_signature,
    personal_sign_digest,
    recover_signer,
)
from aggregator.auth.siwe import Purpose, SignInMessage, check_message, parse
from aggregator.auth.solana_signature import decode_solana_signature, verify_ed25519

ProofMethod = Literal["eip191", "eip1271", "ed25519"]


@dataclass(frozen=True, slots=True)
class ExpectedProof:
    """What the request the proof answers requires the signed text to name."""

    domain: str
    uri: str
    chain: str  # CAIP-2
    user_id: int
    purpose: Purpose


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """A proof that passed: the message, how it was verified, and at which block (EIP-1271)."""

    message: SignInMessage
    text: str
    signature: str
    method: ProofMethod
    block_number: int | None = None

    def record(self) -> str:
        """The JSON kept as `wallets.ownership_proof`: enough to verify the proof again."""
        return json.dumps(
            {
                "method": self.method,
                "message": self.text,
                "signature": self.signature,
                "block_number": self.block_number,
            },
            sort_keys=True,
            separators=(",", ":"),
        )


async def verify_proof(
    text: str,
    signature: str,
    expected: ExpectedProof,
    *,
    now: datetime,
    evm_rpc_url: str | None = None,
    block_tag: str = "latest",
    client: httpx.AsyncClient | None = None,
) -> VerifiedProof:
    """Parse `text`, check it names what `expected` asks and is unexpired at `now`, and check
    `signature` is the account's. Contract wallets are only recognised with `evm_rpc_url`.

    May raise: AuthError (the field at fault and why: `malformed`, `wrong_domain`, `expired`,
    `wrong_signer`, ...), eip1271.ChainReadError (the chain could not be asked).
    """
    if not isinstance(text, str):
        raise AuthError("message", "malformed", "the message must be text")
    message = parse(text)
    check_message(
        message,
        domain=expected.domain,
        uri=expected.uri,
        chain=expected.chain,
        user_id=expected.user_id,
        purpose=expected.purpose,
        now=now,
    )
    if message.family == "solana":
        verify_ed25519(text, message.address, decode_solana_signature(signature))
        return VerifiedProof(message, text, signature, "ed25519")
    raw = decode_hex_signature(signature, length=None)
    if len(raw) == EOA_SIGNATURE_BYTES:
        try:
            if recover_signer(text, raw) == message.address:
                return VerifiedProof(message, text, signature, "eip191")
        except AuthError:
            pass  # not an ECDSA signature: a contract wallet may still accept it
    if evm_rpc_url is not None:
        block = await eip1271.pinned_block(evm_rpc_url, block_tag, client=client)
        if await eip1271.has_code(evm_rpc_url, message.address, block, client=client):
            digest = personal_sign_digest(text)
            if await eip1271.is_valid_signature_1271(
                evm_rpc_url, message.address, digest, raw, block, client=client
            ):
                return VerifiedProof(message, text, signature, "eip1271", block)
            raise AuthError(
                "signature", "wrong_signer", "the contract wallet does not accept this signature"
            )
    if len(raw) != EOA_SIGNATURE_BYTES:
        raise AuthError(
            "signature", "malformed", f"the signature must be {EOA_SIGNATURE_BYTES} bytes"
        )
    recover_signer(text, raw)  # raises bad_signature for one that recovers nothing
    raise AuthError("signature", "wrong_signer", "the signature is not from this account")
