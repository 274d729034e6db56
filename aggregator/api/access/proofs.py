"""Signed proofs over HTTP: issuing the nonce and the exact text to sign, and checking a signed
text against what this service expects, for wallet links and sign-in alike.

Every refusal of a proof is a 422 whose `code` is the `AuthError.reason` (`wrong_signer`,
`expired`, `wrong_domain`, `used`, `other_user`, `unknown`, `missing`, `malformed`, …) and whose
`field` names the part of the text or request at fault. A contract wallet whose chain cannot be
asked is a 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.addresses import AddressError, caip10, normalize_address
from aggregator.api.accounts import chain_key_of
from aggregator.api.context import ApiContext
from aggregator.api.errors import ApiError
from aggregator.api.reads.views import iso
from aggregator.auth.eip1271 import ChainReadError
from aggregator.auth.errors import AuthError
from aggregator.auth.proof import ExpectedProof, VerifiedProof, verify_proof
from aggregator.auth.siwe import Purpose, SignInMessage, build_message, parse, render
from aggregator.config_tables import ChainConfig
from aggregator.store.accounts import auth as auth_repo
from aggregator.store.errors import UnknownUser

PROOF_FAMILIES = ("evm", "solana")


def refused(exc: AuthError) -> ApiError:
    """The 422 of a refused proof: code = why, field = where."""
    return ApiError(422, exc.reason, str(exc), exc.field)


@dataclass(frozen=True, slots=True)
class ProofChain:
    key: str  # the config key wallets are stored under
    config: ChainConfig


def proof_chain(context: ApiContext, caip2: str, field: str) -> ProofChain:
    """The configured EVM or Solana chain with CAIP-2 id `caip2`.

    May raise: ApiError (422 malformed or not a chain a wallet can prove itself on, 404 not
    configured).
    """
    key = chain_key_of(context.config, caip2, field)
    chain = context.config.chains[key]
    if chain.family not in PROOF_FAMILIES:
        raise ApiError(
            422,
            "unsupported_chain",
            f"{caip2} accounts cannot sign a proof here (EVM and Solana chains only)",
            field,
        )
    return ProofChain(key, chain)


def canonical_address(chain: ProofChain, address: str) -> str:
    """The canonical spelling of a requested address (an all-lowercase EVM address is
    checksummed; a mixed-case one must carry its EIP-55 checksum).

    May raise: ApiError (422 naming `address`).
    """
    try:
        return normalize_address(chain.config.family, address, require_checksum=False)
    except AddressError as exc:
        raise ApiError(422, "malformed", str(exc), "address") from None


async def issue_nonce(
    context: ApiContext, *, user_id: int, purpose: Purpose, chain: ProofChain, address: str
) -> dict[str, object]:
    """A fresh nonce and the exact text the account must sign, as the nonce endpoints answer.

    May raise: ApiError (404 unknown user), DatabaseUnavailable.
    """
    settings = context.config.auth
    try:
        async with context.database.session() as session:
            row = await auth_repo.create_nonce(
                session,
                user_id=user_id,
                purpose=purpose,
                chain=chain.config.caip2,
                account=address,
                ttl_seconds=settings.nonce_ttl_seconds,
            )
    except UnknownUser:
        raise ApiError(404, "not_found", f"no user with id {user_id}", "user") from None
    try:
        message = build_message(
            domain=settings.domain,
            address=address,
            uri=settings.uri,
            chain=chain.config.caip2,
            nonce=row.nonce,
            issued_at=row.issued_at,
            expiration_time=row.expires_at,
            user_id=user_id,
            purpose=purpose,
        )
    except AuthError as exc:  # the nonce issued for it is never used and expires
        raise ApiError(422, exc.reason, exc.args[0], exc.field) from None
    return {
        "nonce": row.nonce,
        "message": render(message),
        "purpose": purpose,
        "user_id": user_id,
        "account": caip10(chain.config.caip2, address),
        "issued_at": iso(message.issued_at),
        "expiration_time": iso(message.expiration_time),
    }


def parse_signed(text: str) -> SignInMessage:
    """The message a signed text carries.

    May raise: ApiError (422 naming the line at fault).
    """
    try:
        return parse(text)
    except AuthError as exc:
        raise refused(exc) from None


async def check_proof(
    context: ApiContext,
    text: str,
    signature: str,
    *,
    message: SignInMessage,
    chain: ProofChain,
    user_id: int,
    purpose: Purpose,
) -> VerifiedProof:
    """Check that `text` names this service, chain, user and purpose, has not expired, and
    that `signature` is the account's (personal_sign, EIP-1271 through the chain's first RPC at
    a pinned `latest` block, or ed25519). Nothing is written; the nonce is consumed by the
    caller in the transaction that acts on the proof.

    May raise: ApiError (422 the proof is refused; 503 the contract wallet's chain cannot be
    asked).
    """
    settings = context.config.auth
    expected = ExpectedProof(
        domain=settings.domain,
        uri=settings.uri,
        chain=chain.config.caip2,
        user_id=user_id,
        purpose=purpose,
    )
    rpc = chain.config.rpc_urls[0] if chain.config.family == "evm" else None
    try:
        return await verify_proof(text, signature, expected, now=datetime.now(UTC), evm_rpc_url=rpc)
    except AuthError as exc:
        raise refused(exc) from None
    except ChainReadError as exc:
        raise ApiError(
            503,
            "chain_unavailable",
            f"the contract wallet could not be asked on {chain.config.caip2}: {exc}",
            "signature",
            {"Retry-After": "5"},
        ) from None


async def consume(
    session: AsyncSession, message: SignInMessage, *, user_id: int, purpose: Purpose
) -> None:
    """Consume the text's nonce in the caller's transaction.

    May raise: ApiError (422 naming `nonce`: unknown, another user's, used, expired, or issued
    for another purpose, chain or account).
    """
    try:
        await auth_repo.consume_nonce(
            session,
            message.nonce,
            user_id=user_id,
            purpose=purpose,
            chain=message.chain,
            account=message.address,
        )
    except AuthError as exc:
        raise refused(exc) from None
