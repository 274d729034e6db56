"""`GET /v1/users/{user}/attestation`: the current status as EIP-712 `MarginStatus` typed data
signed by the service key (`aggregator.attest`), verifiable by `MarginAttestationVerifier`."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.responses import Response

from aggregator.api.access.deps import CallerDep, ContextDep, authorize_user
from aggregator.api.errors import ApiError
from aggregator.api.reads.views import iso
from aggregator.api.responses import Json
from aggregator.api.routers.margin import ERRORS, UserParam
from aggregator.api.schemas import Attestation, ErrorResponse
from aggregator.attest import AttestationDomain, AttestationError, attest
from aggregator.publish.documents import published_status

router = APIRouter(tags=["attestation"])


def _domain(context: ContextDep) -> AttestationDomain:
    settings = context.config.auth
    if context.trust.signing_key is None:
        raise ApiError(
            503,
            "attestation_unavailable",
            "attestations are not enabled: the service has no signing key "
            "(XMARGIN_SIGNING_KEY or XMARGIN_SIGNING_KEY_FILE)",
            None,
        )
    if settings.attestation_chain_id is None or settings.attestation_verifying_contract is None:
        raise ApiError(
            503,
            "attestation_unavailable",
            "attestations are not enabled: [auth] attestation_chain_id and "
            "attestation_verifying_contract must name the verifier",
            None,
        )
    return AttestationDomain(settings.attestation_chain_id, settings.attestation_verifying_contract)


@router.get(
    "/v1/users/{user}/attestation",
    response_model=Attestation,
    responses={
        **ERRORS,
        409: {
            "model": ErrorResponse,
            "description": (
                "The status is stale (`stale`), older than the attestation ttl (`too_old`), or "
                "otherwise not attestable: none is signed"
            ),
        },
        503: {
            "model": ErrorResponse,
            "description": "No signing key or no verifier configured, or the database is down",
        },
    },
    summary="The user's current status, signed as EIP-712 typed data",
    description=(
        "`MarginStatus(bytes32 userId, uint64 seq, uint64 observedAt, uint64 expiresAt, int256 "
        "equityUsd, uint256 weightedCollateralUsd, uint256 initialRequirementUsd, uint256 "
        "maintenanceRequirementUsd, int256 freeCollateralUsd, uint256 healthFactor, uint8 status, "
        "bytes32 breakdownHash)` under the domain `xmargin` / `1` / `[auth] attestation_chain_id` "
        "/ `[auth] attestation_verifying_contract`. USD in 1e8, health factor in 1e18 "
        "(`2**256-1` for no debt); `userId` = keccak256(`urn:xmargin:user:<id>`). A stale "
        "status is never attested (409)."
    ),
)
async def user_attestation(user: UserParam, context: ContextDep, caller: CallerDep) -> Response:
    row = await context.reader.user(user)
    authorize_user(caller, row.id)
    domain = _domain(context)
    key = context.trust.signing_key
    assert key is not None  # _domain checked
    async with context.database.session() as session:
        record = await published_status(session, context.config, row.id)
    if record is None:
        raise ApiError(404, "no_status", f"no status has been published for {row.name!r}", "user")
    if record.document.get("stale"):
        stale = ", ".join(record.document.get("stale_chains") or []) or "its inputs"
        raise ApiError(
            409,
            "stale",
            f"the status is stale ({stale}): a stale status is not attested",
            "user",
        )
    try:
        signed = attest(
            record.document,
            seq=record.seq,
            domain=domain,
            key=key,
            ttl_seconds=context.config.auth.attestation_ttl_seconds,
            user_id=row.id,
        )
    except AttestationError as exc:
        raise ApiError(409, "not_attestable", str(exc), exc.field) from None
    if int(signed.values["expiresAt"]) <= int(datetime.now(UTC).timestamp()):
        ttl = context.config.auth.attestation_ttl_seconds
        raise ApiError(
            409,
            "too_old",
            f"the status was observed more than attestation_ttl_seconds ({ttl} s) ago: an "
            "attestation of it would already be expired",
            "user",
        )
    body = signed.to_json()
    read_points = [
        {"chain": caip2, "height": point.get("height"), "block_hash": point.get("block_hash")}
        for caip2, point in sorted(signed.breakdown["chains"].items())
    ]
    expires_at = datetime.fromtimestamp(int(signed.values["expiresAt"]), UTC)
    return Json(
        {
            "user": row.name,
            "user_id": row.id,
            "seq": record.seq,
            **body,
            "signers": list(context.config.auth.signers) or [signed.signer],
            "read_points": read_points,
            "expires_at": iso(expires_at),
        },
        headers={"Cache-Control": "no-store"},
    )
