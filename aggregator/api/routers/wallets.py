"""Linking a wallet to a user, only with the wallet's signed proof of ownership.

Both endpoints need an API key of scope `link` or `admin` (the front end's back end, which
knows its user): a sign-in session or a `read` key is refused (403), no credential is a 401.
The operator CLI (`xmargin wallets link`) stays for operators and records `operator` as the
proof.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from aggregator.addresses import caip10
from aggregator.api.access import proofs
from aggregator.api.access.deps import ContextDep
from aggregator.api.errors import ApiError
from aggregator.api.reads.views import iso
from aggregator.api.responses import Json
from aggregator.api.routers.margin import ERRORS, UserParam
from aggregator.api.schemas import (
    ErrorResponse,
    LinkedWallet,
    NonceResponse,
    SignedMessage,
    WalletNonceRequest,
)
from aggregator.store.accounts import users as user_repo
from aggregator.store.errors import UnknownUser, WalletTaken

router = APIRouter(tags=["wallets"])

PROOF_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {"model": ErrorResponse, "description": "The body is over 1 MiB"},
    422: {
        "model": ErrorResponse,
        "description": (
            "The request or the proof is refused: `code` says why (`wrong_signer`, `expired`, "
            "`used`, `other_user`, `unknown`, `wrong_domain`, `wrong_chain`, `missing`, "
            "`unexpected_line`, `malformed`, …), `field` where"
        ),
    },
    503: {
        "model": ErrorResponse,
        "description": "The database, or a contract wallet's chain, is unreachable",
    },
}


@router.post(
    "/v1/users/{user}/wallets/nonce",
    response_model=NonceResponse,
    responses=PROOF_ERRORS,
    summary="A single-use nonce and the exact text the wallet must sign to be linked",
    description=(
        "Needs an API key of scope `link` or `admin`. The text (EIP-4361 for EVM, its CAIP-122 "
        "form for Solana) binds the service's domain and URI, the chain, the account, the user, "
        "the nonce, issued-at and expiration (`[auth] nonce_ttl_seconds`)."
    ),
)
async def wallet_nonce(user: UserParam, body: WalletNonceRequest, context: ContextDep) -> Response:
    chain = proofs.proof_chain(context, body.chain, "chain")
    address = proofs.canonical_address(chain, body.address)
    row = await context.reader.user(user)
    answer = await proofs.issue_nonce(
        context, user_id=row.id, purpose="link", chain=chain, address=address
    )
    return Json(answer, headers={"Cache-Control": "no-store"})


@router.post(
    "/v1/users/{user}/wallets",
    response_model=LinkedWallet,
    status_code=201,
    responses={
        **PROOF_ERRORS,
        409: {"model": ErrorResponse, "description": "The wallet is linked to another user"},
    },
    summary="Link a wallet with its signed proof of ownership",
    description=(
        "Needs an API key of scope `link` or `admin`. Send the text from the nonce endpoint "
        "exactly as signed, and the signature. EVM: personal_sign (EIP-191), or EIP-1271 for a "
        "contract wallet (asked through the chain's configured RPC at a pinned block). Solana: "
        "ed25519. The nonce is consumed in the same transaction that links: a refused proof "
        "leaves nothing written. The proof is stored as `wallets.ownership_proof`."
    ),
)
async def link_wallet(user: UserParam, body: SignedMessage, context: ContextDep) -> Response:
    row = await context.reader.user(user)
    message = proofs.parse_signed(body.message)
    chain = proofs.proof_chain(context, message.chain, "chain")
    proof = await proofs.check_proof(
        context,
        body.message,
        body.signature,
        message=message,
        chain=chain,
        user_id=row.id,
        purpose="link",
    )
    try:
        async with context.database.session() as session:
            await proofs.consume(session, message, user_id=row.id, purpose="link")
            await user_repo.link_wallet(session, row.id, chain.key, message.address, proof.record())
            linked = next(
                w
                for w in await user_repo.wallets_of_user(session, row.id)
                if w.chain == chain.key and w.address == message.address
            )
    except WalletTaken:
        raise ApiError(
            409, "wallet_taken", "this wallet is already linked to another user", "address"
        ) from None
    except UnknownUser:
        raise ApiError(404, "not_found", f"no user {user!r}", "user") from None
    assert linked.verified_at is not None  # a link with a proof is verified
    return Json(
        {
            "user": row.name,
            "user_id": row.id,
            "account": caip10(chain.config.caip2, message.address),
            "method": proof.method,
            "block_number": proof.block_number,
            "verified_at": iso(linked.verified_at),
        },
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )
