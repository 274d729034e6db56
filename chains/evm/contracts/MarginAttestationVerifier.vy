# pragma version 0.4.3
"""
@title MarginAttestationVerifier
@notice Verifies xmargin's EIP-712 `MarginStatus` attestations on chain. The owner keeps an
        allowlist of signer addresses (the service's current and previous keys); `verify`
        recomputes the digest under this contract's own domain (name "xmargin", version "1",
        this chain's id, this address), recovers the signer and answers False for an expired
        attestation, an unknown signer or a bad signature. It never reverts on a bad signature.
"""

struct MarginStatus:
    userId: bytes32
    seq: uint64
    observedAt: uint64
    expiresAt: uint64
    equityUsd: int256
    weightedCollateralUsd: uint256
    initialRequirementUsd: uint256
    maintenanceRequirementUsd: uint256
    freeCollateralUsd: int256
    healthFactor: uint256
    status: uint8
    breakdownHash: bytes32

EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
MARGIN_STATUS_TYPEHASH: constant(bytes32) = keccak256(
    "MarginStatus(bytes32 userId,uint64 seq,uint64 observedAt,uint64 expiresAt,int256 equityUsd,uint256 weightedCollateralUsd,uint256 initialRequirementUsd,uint256 maintenanceRequirementUsd,int256 freeCollateralUsd,uint256 healthFactor,uint8 status,bytes32 breakdownHash)"
)
NAME_HASH: constant(bytes32) = keccak256("xmargin")
VERSION_HASH: constant(bytes32) = keccak256("1")
# secp256k1 n / 2: larger `s` values are the malleable twin of a valid signature (EIP-2).
HALF_CURVE_ORDER: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
MAX_SIGNATURE: constant(uint256) = 256

event SignerAdded:
    signer: indexed(address)

event SignerRemoved:
    signer: indexed(address)

event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)

owner: public(address)
isSigner: public(HashMap[address, bool])


@deploy
def __init__(signers: DynArray[address, 8]):
    self.owner = msg.sender
    for signer: address in signers:
        assert signer != empty(address), "zero signer"
        self.isSigner[signer] = True
        log SignerAdded(signer=signer)


@external
def addSigner(signer: address):
    assert msg.sender == self.owner, "only owner"
    assert signer != empty(address), "zero signer"
    self.isSigner[signer] = True
    log SignerAdded(signer=signer)


@external
def removeSigner(signer: address):
    assert msg.sender == self.owner, "only owner"
    self.isSigner[signer] = False
    log SignerRemoved(signer=signer)


@external
def transferOwnership(new_owner: address):
    assert msg.sender == self.owner, "only owner"
    assert new_owner != empty(address), "zero owner"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=new_owner)
    self.owner = new_owner


@view
@internal
def _domain_separator() -> bytes32:
    return keccak256(
        abi_encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self)
    )


@view
@internal
def _digest(a: MarginStatus) -> bytes32:
    struct_hash: bytes32 = keccak256(
        abi_encode(
            MARGIN_STATUS_TYPEHASH,
            a.userId,
            a.seq,
            a.observedAt,
            a.expiresAt,
            a.equityUsd,
            a.weightedCollateralUsd,
            a.initialRequirementUsd,
            a.maintenanceRequirementUsd,
            a.freeCollateralUsd,
            a.healthFactor,
            a.status,
            a.breakdownHash,
        )
    )
    return keccak256(concat(x"1901", self._domain_separator(), struct_hash))


@view
@external
def domainSeparator() -> bytes32:
    return self._domain_separator()


@view
@external
def digest(a: MarginStatus) -> bytes32:
    """@notice The EIP-712 digest the service signs for `a`."""
    return self._digest(a)


@view
@external
def recoverSigner(a: MarginStatus, signature: Bytes[MAX_SIGNATURE]) -> address:
    """@notice Who signed `a` (empty(address) for a malformed or malleable signature)."""
    return self._recover(self._digest(a), signature)


@view
@internal
def _recover(digest_: bytes32, signature: Bytes[MAX_SIGNATURE]) -> address:
    if len(signature) != 65:
        return empty(address)
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v < 27:
        v += 27
    if v != 27 and v != 28:
        return empty(address)
    if s == 0 or s > HALF_CURVE_ORDER or r == 0:
        return empty(address)
    return ecrecover(digest_, v, r, s)


@view
@external
def verify(a: MarginStatus, signature: Bytes[MAX_SIGNATURE]) -> bool:
    """
    @notice True iff `signature` is an allowlisted signer's over `a` and `a` has not expired
            (expiresAt >= block.timestamp).
    """
    if convert(a.expiresAt, uint256) < block.timestamp:
        return False
    signer: address = self._recover(self._digest(a), signature)
    if signer == empty(address):
        return False
    return self.isSigner[signer]
