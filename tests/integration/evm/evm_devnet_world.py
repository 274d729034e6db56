"""The shared devnet of the EVM integration tests (see conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

from chains.evm.devnet import AnvilNode, EvmDeployment


@dataclass(frozen=True)
class EvmWorld:
    node: AnvilNode
    deployment: EvmDeployment

    @property
    def url(self) -> str:
        return self.node.url
