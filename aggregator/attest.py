"""EIP-712 attestations of a published margin status, verifiable by a plain contract
(chains/evm/contracts/MarginAttestationVerifier.vy).

    MarginStatus(bytes32 userId, uint64 seq, uint64 observedAt, uint64 expiresAt,
                 int256 equityUsd, uint256 weightedCollateralUsd, uint256 initialRequirementUsd,
                 uint256 maintenanceRequirementUsd, int256 freeCollateralUsd,
                 uint256 healthFactor, uint8 status, bytes32 breakdownHash)

- `userId` = keccak256 of the UTF-8 text `urn:xmargin:user:<id>` (the numeric user id, as in
  the signed link and sign-in texts; names are for people, the id is what the API returns).
- `seq` is the status version (the API's ETag); `observedAt` the status's `as_of`;
  `expiresAt` = `observedAt` + the configured ttl. All unix seconds.
- USD figures are integers in 1e8 units, rounded toward the conservative side: what the holder
  has (equity, weighted collateral = the document's `weighted_collateral.maint`, free
  collateral) is rounded down (toward −∞), what they owe (initial and maintenance requirements)
  is rounded up. The health factor is in 1e18 (Aave's units), rounded down, and
  `2**256 - 1` when nothing is owed (the document's `null`).
- `status`: 0 healthy, 1 warning, 2 margin_call, 3 liquidatable.
- `breakdownHash` = keccak256 of the canonical JSON (sorted keys, no spaces, UTF-8, no floats)
  of `{"chains": {caip2: {"block_hash", "height"}}, "lines": document["lines"]}`, returned beside
  the signature so anyone can recompute it.

A stale status is not attested: the struct has no room to say so, and a consumer would take it
for current data.

Domain: `EIP712Domain(string name, string version, uint256 chainId, address verifyingContract)`
with name `xmargin`, version `1`, and the chain id and verifier address from config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from aggregator.auth.signing_key import SigningKey
from aggregator.auth.siwe import user_urn
from aggregator.errors import XmarginError
from chains.evm.address import EvmAddressError, normalize_evm_address

DOMAIN_NAME = "xmargin"
DOMAIN_VERSION = "1"
USD_DECIMALS = 8
HEALTH_FACTOR_DECIMALS = 18
NO_DEBT_HEALTH_FACTOR = 2**256 - 1
STATUS_CODES = {"healthy": 0, "warning": 1, "margin_call": 2, "liquidatable": 3}

EIP712_DOMAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)
MARGIN_STATUS_FIELDS: tuple[tuple[str, str], ...] = (
    ("userId", "bytes32"),
    ("seq", "uint64"),
    ("observedAt", "uint64"),
    ("expiresAt", "uint64"),
    ("equityUsd", "int256"),
    ("weightedCollateralUsd", "uint256"),
    ("initialRequirementUsd", "uint256"),
    ("maintenanceRequirementUsd", "uint256"),
    ("freeCollateralUsd", "int256"),
    ("healthFactor", "uint256"),
    ("status", "uint8"),
    ("breakdownHash", "bytes32"),
)


def _type_string(name: str, fields: tuple[tuple[str, str], ...]) -> str:
    return f"{name}({','.join(f'{kind} {field}' for field, kind in fields)})"


EIP712_DOMAIN_TYPEHASH = keccak(text=_type_string("EIP712Domain", EIP712_DOMAIN_FIELDS))
MARGIN_STATUS_TYPEHASH = keccak(text=_type_string("MarginStatus", MARGIN_STATUS_FIELDS))
_BOUNDS = {
    "uint8": (0, 2**8 - 1),
    "uint64": (0, 2**64 - 1),
    "uint256": (0, 2**256 - 1),
    "int256": (-(2**255), 2**255 - 1),
}


class AttestationError(XmarginError):
    """The status cannot be attested; `field` names the document field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class AttestationDomain:
    """Where the attestation is meant to be verified."""

    chain_id: int
    verifying_contract: str  # EIP-55
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def __post_init__(self) -> None:
        try:
            normalize_evm_address(self.verifying_contract)
        except EvmAddressError as exc:
            raise AttestationError("verifying_contract", str(exc)) from None
        if self.chain_id <= 0:
            raise AttestationError("chain_id", "the attestation chain id must be positive")

    def as_typed_data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }

    def separator(self) -> bytes:
        """The EIP-712 domain separator."""
        return keccak(
            encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    EIP712_DOMAIN_TYPEHASH,
                    keccak(text=self.name),
                    keccak(text=self.version),
                    self.chain_id,
                    self.verifying_contract,
                ],
            )
        )


@dataclass(frozen=True, slots=True)
class MarginAttestation:
    """A signed status: the struct values, the typed data, its digest, the signature and who
    signed, and the breakdown `breakdownHash` commits to."""

    values: dict[str, Any]
    typed_data: dict[str, Any]
    digest: bytes
    signature: bytes
    signer: str
    breakdown: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: integers as decimal strings (uint256 exceed JavaScript numbers), bytes
        as 0x hex."""
        return {
            "typed_data": _json_ready(self.typed_data),
            "digest": "0x" + self.digest.hex(),
            "signature": "0x" + self.signature.hex(),
            "signer": self.signer,
            "breakdown": self.breakdown,
        }


def _json_ready(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def user_id_hash(user_id: int) -> bytes:
    """`userId`: keccak256 of `urn:xmargin:user:<id>`."""
    return keccak(text=user_urn(user_id))


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 (not ASCII-escaped). Floats are refused: they have no
    single spelling.

    May raise: AttestationError (a float or a non-JSON value inside).
    """
    _refuse_floats(value, "breakdown")
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise AttestationError("breakdown", f"not canonical JSON: {exc}") from None
    return text.encode("utf-8")


def _refuse_floats(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise AttestationError(path, "floats have no canonical JSON form")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_floats(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_floats(item, f"{path}[{index}]")


def breakdown_of(document: dict[str, Any]) -> dict[str, Any]:
    """The lines and chain read points of a status document, as `breakdownHash` covers them.

    May raise: AttestationError (no `lines` list or `chains` object).
    """
    lines = document.get("lines")
    chains = document.get("chains")
    if not isinstance(lines, list):
        raise AttestationError("lines", "the status has no lines list")
    if not isinstance(chains, dict):
        raise AttestationError("chains", "the status has no chains object")
    read_points = {}
    for caip2, info in chains.items():
        if not isinstance(info, dict):
            raise AttestationError(f"chains.{caip2}", "a chain entry must be an object")
        read_points[caip2] = {"height": info.get("height"), "block_hash": info.get("block_hash")}
    return {"chains": read_points, "lines": lines}


def _decimal(document: dict[str, Any], path: str) -> Decimal:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, str):
        raise AttestationError(path, f"{path} must be a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise AttestationError(path, f"{path} is not a decimal number") from None
    if not number.is_finite():
        raise AttestationError(path, f"{path} must be finite")
    return number


def _scaled(number: Decimal, decimals: int, rounding: str, path: str, kind: str) -> int:
    with localcontext() as ctx:
        ctx.prec = 200
        scaled = int((number * (Decimal(10) ** decimals)).to_integral_value(rounding=rounding))
    low, high = _BOUNDS[kind]
    if not low <= scaled <= high:
        raise AttestationError(path, f"{path} does not fit {kind} at 1e{decimals}")
    return scaled


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise AttestationError("as_of", "times must be timezone-aware")
    return int(moment.timestamp())


def attestation_values(
    document: dict[str, Any], *, seq: int, ttl_seconds: int, user_id: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `MarginStatus` values of a published status document, and the breakdown its
    `breakdownHash` commits to. `user_id` defaults to the document's `user_id`.

    May raise: AttestationError (a missing or out-of-range field, an unknown status, a stale
    status, a non-positive ttl).
    """
    if document.get("stale"):
        raise AttestationError("stale", "a stale status is not attested")
    uid = document.get("user_id") if user_id is None else user_id
    if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
        raise AttestationError("user_id", "the status has no positive user_id")
    if not 0 <= seq < 2**64:
        raise AttestationError("seq", "seq must fit uint64")
    if ttl_seconds <= 0:
        raise AttestationError("ttl_seconds", "the attestation ttl must be positive")
    as_of = document.get("as_of")
    try:
        observed_at = _unix(datetime.fromisoformat(str(as_of).replace("Z", "+00:00")))
    except ValueError:
        raise AttestationError("as_of", "as_of must be an RFC 3339 time") from None
    status = document.get("status")
    if status not in STATUS_CODES:
        raise AttestationError("status", f"unknown status {status!r}")
    health_factor = document.get("health_factor")
    breakdown = breakdown_of(document)
    usd = USD_DECIMALS
    values: dict[str, Any] = {
        "userId": user_id_hash(uid),
        "seq": seq,
        "observedAt": observed_at,
        "expiresAt": observed_at + ttl_seconds,
        "equityUsd": _scaled(_decimal(document, "equity"), usd, ROUND_FLOOR, "equity", "int256"),
        "weightedCollateralUsd": _scaled(
            _decimal(document, "weighted_collateral.maint"),
            usd,
            ROUND_FLOOR,
            "weighted_collateral.maint",
            "uint256",
        ),
        "initialRequirementUsd": _scaled(
            _decimal(document, "requirement.init"),
            usd,
            ROUND_CEILING,
            "requirement.init",
            "uint256",
        ),
        "maintenanceRequirementUsd": _scaled(
            _decimal(document, "requirement.maint"),
            usd,
            ROUND_CEILING,
            "requirement.maint",
            "uint256",
        ),
        "freeCollateralUsd": _scaled(
            _decimal(document, "free_collateral"), usd, ROUND_FLOOR, "free_collateral", "int256"
        ),
        "healthFactor": NO_DEBT_HEALTH_FACTOR
        if health_factor is None
        else _scaled(
            _decimal(document, "health_factor"),
            HEALTH_FACTOR_DECIMALS,
            ROUND_FLOOR,
            "health_factor",
            "uint256",
        ),
        "status": STATUS_CODES[status],
        "breakdownHash": keccak(canonical_json(breakdown)),
    }
    if values["expiresAt"] >= 2**64:
        raise AttestationError("ttl_seconds", "expiresAt does not fit uint64")
    return values, breakdown


def typed_data(domain: AttestationDomain, values: dict[str, Any]) -> dict[str, Any]:
    """The full EIP-712 typed data (`eth_signTypedData_v4` shape) of a `MarginStatus`."""
    return {
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in EIP712_DOMAIN_FIELDS],
            "MarginStatus": [{"name": n, "type": t} for n, t in MARGIN_STATUS_FIELDS],
        },
        "primaryType": "MarginStatus",
        "domain": domain.as_typed_data(),
        "message": dict(values),
    }


def struct_hash(values: dict[str, Any]) -> bytes:
    """hashStruct(MarginStatus): every member is a static type, so its ABI word is its
    encodeData word.

    May raise: KeyError (a member missing), eth_abi EncodingError (a value out of its type).
    """
    return keccak(
        encode(
            ["bytes32", *(kind for _, kind in MARGIN_STATUS_FIELDS)],
            [MARGIN_STATUS_TYPEHASH, *(values[name] for name, _ in MARGIN_STATUS_FIELDS)],
        )
    )


def digest(domain: AttestationDomain, values: dict[str, Any]) -> bytes:
    """keccak256(0x1901 || domainSeparator || hashStruct(message)): what is signed.

    May raise: as `struct_hash`.
    """
    return keccak(b"\x19\x01" + domain.separator() + struct_hash(values))


def attest(
    document: dict[str, Any],
    *,
    seq: int,
    domain: AttestationDomain,
    key: SigningKey,
    ttl_seconds: int,
    user_id: int | None = None,
) -> MarginAttestation:
    """Sign the `MarginStatus` of a published status document with `key`.

    May raise: AttestationError (see `attestation_values`; also if eth_account's digest ever
    disagreed with this module's, which would be a bug).
    """
    values, breakdown = attestation_values(
        document, seq=seq, ttl_seconds=ttl_seconds, user_id=user_id
    )
    data = typed_data(domain, values)
    signed_digest, signature = key.sign_typed_data(data)
    if signed_digest != digest(domain, values):
        raise AttestationError("typed_data", "EIP-712 digest mismatch between encoders")
    return MarginAttestation(
        values=values,
        typed_data=data,
        digest=signed_digest,
        signature=signature,
        signer=key.address,
        breakdown=breakdown,
    )
