"""Deploy the trust contracts on a local node: the attestation verifier and an EIP-1271 dev
wallet, from anvil's unlocked default account."""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi.abi import encode

from chains.evm.address import to_checksum
from chains.evm.anvil import DEFAULT_ACCOUNT, DevnetRpc
from chains.evm.vyper_build import compile_contract


async def _deploy(url: str, name: str, types: list[str], args: list[object], sender: str) -> str:
    init_code = compile_contract(name).bytecode + encode(types, args)
    async with DevnetRpc(url) as rpc:
        receipt = await rpc.send(None, init_code, sender=sender)
    return to_checksum(str(receipt["contractAddress"])[2:])


async def deploy_attestation_verifier(
    url: str, signers: Sequence[str], *, owner: str = DEFAULT_ACCOUNT
) -> str:
    """Deploy `MarginAttestationVerifier` owned by `owner` (an unlocked account) with up to 8
    allowlisted `signers`; its address.

    May raise: DevnetError.
    """
    return await _deploy(url, "MarginAttestationVerifier", ["address[]"], [list(signers)], owner)


async def deploy_dev_smart_wallet(url: str, owner: str, *, sender: str = DEFAULT_ACCOUNT) -> str:
    """Deploy a `DevSmartWallet` accepting signatures by `owner`; its address.

    May raise: DevnetError.
    """
    return await _deploy(url, "DevSmartWallet", ["address"], [owner], sender)
