"""Shipped Multicall3 code is the fixture's exact bytes; anvil lookup errors are clear."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak
from evm_fixtures import load

from chains.base import EndpointPolicy
from chains.evm.anvil import DevnetError, find_anvil
from chains.evm.devnet import MULTICALL3_CODE_HASH, MULTICALL3_RUNTIME_PATH
from chains.evm.rpc import EndpointPool


def test_shipped_multicall3_runtime_is_the_canonical_bytecode() -> None:
    fixture = load("multicall3.json")
    shipped = MULTICALL3_RUNTIME_PATH.read_text().strip()
    assert shipped == fixture["deployedBytecode"]
    code = bytes.fromhex(shipped[2:])
    assert len(code) == fixture["deployedBytecodeLength"] == 3808
    assert "0x" + keccak(code).hex() == fixture["deployedBytecodeKeccak256"] == MULTICALL3_CODE_HASH


def test_a_missing_anvil_override_is_reported_by_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XMARGIN_ANVIL", "/nonexistent/anvil")
    with pytest.raises(DevnetError, match="XMARGIN_ANVIL=/nonexistent/anvil is not an executable"):
        find_anvil()


def test_anvil_is_found_in_node_modules_without_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XMARGIN_ANVIL", raising=False)
    assert find_anvil().parts[-4:] == ("@foundry-rs", "anvil-linux-amd64", "bin", "anvil")


def test_backoff_is_exponential_with_jitter_of_half_either_way() -> None:
    pool = EndpointPool("x", EndpointPolicy(urls=("http://127.0.0.1:1",), backoff_seconds=0.2))
    first = [pool._backoff(1) for _ in range(200)]
    third = [pool._backoff(3) for _ in range(200)]
    assert 0.1 <= min(first) and max(first) <= 0.3
    assert 0.4 <= min(third) and max(third) <= 1.2
    assert len(set(first)) > 100  # jittered, not a fixed delay
