"""Sign-in: a user proves control of one of their linked wallets and gets a short-lived bearer
token scoped to that user (`[auth] session_ttl_seconds`, signed with the current session key).

Two endpoints, one per signature scheme — `POST /v1/auth/siwe` for EVM accounts (EIP-4361,
personal_sign or EIP-1271) and `POST /v1/auth/solana` for Solana accounts (CAIP-122, ed25519) —
after one nonce endpoint for both, `POST /v1/auth/nonce`. They need no credential (they are how
a user gets one) and are rate-limited per client address.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from aggregator.api.access import proofs
from aggregator.api.access.deps import ContextDep, api_context
from aggregator.api.access.security import remember_decision
from aggregator.api.errors import ApiError
from aggregator.api.reads.views import iso
from aggregator.api.responses import Json
from aggregator.api.routers.wallets import PROOF_ERRORS
from aggregator.api.schemas import (
    ErrorResponse,
    NonceResponse,
    Session,
    SignedMessage,
    SignInNonceRequest,
)
from aggregator.auth import tokens
from aggregator.store.accounts import users as user_repo


async def limit_by_address(request: Request) -> None:
    """One request from the client address's bucket (`[auth] rate_per_minute`).

    May raise: ApiError (429 with `Retry-After`).
    """
    trust = api_context(request).trust
    client = request.client.host if request.client is not None else "unknown"
    rate = trust.settings.rate_per_minute
    decision = trust.limiter.take(f"ip:{client}", rate)
    remember_decision(request.scope, decision)
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"over {rate} sign-in requests per minute: retry in {decision.retry_after} s",
            None,
            decision.headers(),
        )


router = APIRouter(tags=["auth"], dependencies=[Depends(limit_by_address)])

SIGNIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **PROOF_ERRORS,
    403: {
        "model": ErrorResponse,
        "description": "The wallet that signed is not linked to that user (`not_linked`)",
    },
    503: {
        "model": ErrorResponse,
        "description": (
            "Sign-in is not configured (no session key), or the database or a contract "
            "wallet's chain is unreachable"
        ),
    },
}


@router.post(
    "/v1/auth/nonce",
    response_model=NonceResponse,
    responses=PROOF_ERRORS,
    summary="A single-use nonce and the exact text to sign to sign in",
    description=(
        "Whether the account is linked to the user is only checked at sign-in, after the "
        "signature: this endpoint does not tell who owns a wallet."
    ),
)
async def signin_nonce(body: SignInNonceRequest, context: ContextDep) -> Response:
    chain = proofs.proof_chain(context, body.chain, "chain")
    address = proofs.canonical_address(chain, body.address)
    row = await context.reader.user(body.user)
    answer = await proofs.issue_nonce(
        context, user_id=row.id, purpose="signin", chain=chain, address=address
    )
    return Json(answer, headers={"Cache-Control": "no-store"})


async def _sign_in(context: ContextDep, body: SignedMessage, family: str) -> Response:
    keyring = context.trust.session_keys
    if keyring is None:
        env = context.config.auth.session_key_env
        key_id = context.config.auth.session_key_id.upper()
        raise ApiError(
            503,
            "sessions_unavailable",
            f"sign-in is not configured on this server (no session key: {env}_{key_id})",
            None,
        )
    message = proofs.parse_signed(body.message)
    chain = proofs.proof_chain(context, message.chain, "chain")
    if chain.config.family != family:
        other = "/v1/auth/solana" if chain.config.family == "solana" else "/v1/auth/siwe"
        raise ApiError(
            422, "wrong_endpoint", f"a {chain.config.family} account signs in at {other}", "chain"
        )
    proof = await proofs.check_proof(
        context,
        body.message,
        body.signature,
        message=message,
        chain=chain,
        user_id=message.user_id,
        purpose="signin",
    )
    async with context.database.session() as session:
        await proofs.consume(session, message, user_id=message.user_id, purpose="signin")
        owner = await user_repo.wallet_owner(session, chain.key, message.address)
        if owner != message.user_id:
            # Raised inside the transaction: the nonce is left unconsumed.
            raise ApiError(403, "not_linked", "this wallet is not linked to that user", "address")
        user = await user_repo.get_user(session, message.user_id)
    assert user is not None  # it owns a wallet
    now = datetime.now(UTC)
    token, claims = tokens.issue(
        keyring,
        user_id=user.id,
        account=proof.message.account,
        now=now,
        ttl_seconds=context.config.auth.session_ttl_seconds,
    )
    return Json(
        {
            "token": token,
            "token_type": "Bearer",
            "user": user.name,
            "user_id": user.id,
            "account": claims.account,
            "expires_at": iso(datetime.fromtimestamp(claims.expires_at, UTC)),
            "expires_in": claims.expires_at - int(now.timestamp()),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/v1/auth/siwe",
    response_model=Session,
    responses=SIGNIN_ERRORS,
    summary="Sign in with an EVM wallet (EIP-4361): a session token for its user",
    description=(
        "For `eip155:*` accounts (Solana accounts use POST /v1/auth/solana). Send the text "
        "from POST /v1/auth/nonce exactly as signed (personal_sign, or EIP-1271 for a contract "
        "wallet) and the signature. The wallet must be linked to the user the text names."
    ),
)
async def sign_in_evm(body: SignedMessage, context: ContextDep) -> Response:
    return await _sign_in(context, body, "evm")


@router.post(
    "/v1/auth/solana",
    response_model=Session,
    responses=SIGNIN_ERRORS,
    summary="Sign in with a Solana wallet (CAIP-122, ed25519): a session token for its user",
    description=(
        "For `solana:*` accounts (EVM accounts use POST /v1/auth/siwe). Send the text from "
        "POST /v1/auth/nonce exactly as signed and the base58 signature. The wallet must be "
        "linked to the user the text names."
    ),
)
async def sign_in_solana(body: SignedMessage, context: ContextDep) -> Response:
    return await _sign_in(context, body, "solana")
