"""EIP-1271: asking a contract wallet whether a signature is its own, at one pinned block.

`isValidSignature(bytes32 hash, bytes signature)` returns the magic value `0x1626ba7e` when the
wallet accepts the signature. Every read of one verification names the same block number
(`pinned_block` picks it once), so the code check and the call see one state of the chain.
"""

from __future__ import annotations

from typing import Any

import httpx
from eth_abi.abi import encode

from aggregator.errors import XmarginError
from chains.evm.abi import selector
from chains.evm.address import to_checksum

IS_VALID_SIGNATURE = selector("isValidSignature(bytes32,bytes)")
MAGIC_VALUE = bytes.fromhex("1626ba7e")
_TIMEOUT_SECONDS = 10.0


class ChainReadError(XmarginError):
    """The chain could not be asked (transport error, JSON-RPC error other than a revert)."""


async def _rpc(
    rpc_url: str, method: str, params: list[Any], client: httpx.AsyncClient | None
) -> Any:
    """One JSON-RPC call; `None` for an execution revert.

    May raise: ChainReadError.
    """
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=_TIMEOUT_SECONDS) as own:
                response = await own.post(rpc_url, json=payload)
        else:
            response = await client.post(rpc_url, json=payload)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ChainReadError(f"{method} failed: {type(exc).__name__}") from None
    if not isinstance(body, dict):
        raise ChainReadError(f"{method}: unexpected answer")
    error = body.get("error")
    if error is not None:
        message = str(error.get("message", "")).lower() if isinstance(error, dict) else ""
        if (isinstance(error, dict) and error.get("code") == 3) or "revert" in message:
            return None
        raise ChainReadError(f"{method}: JSON-RPC error {str(error)[:120]}")
    return body.get("result")


async def pinned_block(
    rpc_url: str, tag: str = "latest", *, client: httpx.AsyncClient | None = None
) -> int:
    """The number of the block `tag` (`latest`, `safe`, `finalized`) names right now.

    May raise: ChainReadError.
    """
    block = await _rpc(rpc_url, "eth_getBlockByNumber", [tag, False], client)
    if not isinstance(block, dict) or not isinstance(block.get("number"), str):
        raise ChainReadError(f"no {tag} block")
    return int(block["number"], 16)


async def has_code(
    rpc_url: str, address: str, block_number: int, *, client: httpx.AsyncClient | None = None
) -> bool:
    """True iff `address` holds contract code at `block_number` (a contract wallet).

    May raise: ChainReadError.
    """
    code = await _rpc(rpc_url, "eth_getCode", [to_checksum(address[2:]), hex(block_number)], client)
    if not isinstance(code, str) or not code.startswith("0x"):
        raise ChainReadError("eth_getCode: unexpected answer")
    return len(code) > 2


async def is_valid_signature_1271(
    rpc_url: str,
    contract_address: str,
    digest32: bytes,
    signature: bytes,
    block_number: int,
    *,
    client: httpx.AsyncClient | None = None,
) -> bool:
    """True iff the contract at `contract_address` answers `isValidSignature(digest32,
    signature)` with exactly the magic value (ABI-encoded bytes4) at `block_number`. A revert,
    empty return data or any other value is False.

    May raise: ChainReadError (the chain could not be asked), ValueError (digest not 32 bytes).
    """
    if len(digest32) != 32:
        raise ValueError("the digest must be 32 bytes")
    data = IS_VALID_SIGNATURE + encode(["bytes32", "bytes"], [digest32, signature])
    call = {"to": to_checksum(contract_address[2:]), "data": "0x" + data.hex()}
    result = await _rpc(rpc_url, "eth_call", [call, hex(block_number)], client)
    if not isinstance(result, str) or not result.startswith("0x"):
        return False
    try:
        returned = bytes.fromhex(result[2:])
    except ValueError:
        return False
    return returned == MAGIC_VALUE + bytes(28)
