# pragma version 0.4.3
"""
@title DevSmartWallet
@notice A minimal EIP-1271 contract wallet for tests: it accepts a signature iff its owner (an
        EOA) made it over the hash. The owner can hand the wallet to another key, which lets a
        test show that a check pinned to an earlier block still sees the earlier owner.
"""

MAGIC_VALUE: constant(bytes4) = 0x1626ba7e
INVALID: constant(bytes4) = 0xffffffff

owner: public(address)


@deploy
def __init__(owner_: address):
    self.owner = owner_


@external
def setOwner(new_owner: address):
    assert msg.sender == self.owner, "only owner"
    self.owner = new_owner


@view
@external
def isValidSignature(hash: bytes32, signature: Bytes[65]) -> bytes4:
    if len(signature) != 65:
        return INVALID
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v < 27:
        v += 27
    signer: address = ecrecover(hash, v, r, s)
    if signer != empty(address) and signer == self.owner:
        return MAGIC_VALUE
    return INVALID
