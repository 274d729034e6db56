"""Which adapter reads which chain family. New families register here and nowhere else."""

from __future__ import annotations

from chains.base import ChainAdapter
from chains.evm.spec import EvmChainSpec
from chains.hyperliquid.spec import HyperliquidChainSpec
from chains.solana.spec import SolanaChainSpec

ChainSpec = EvmChainSpec | SolanaChainSpec | HyperliquidChainSpec


def build_adapter(spec: ChainSpec) -> ChainAdapter:
    """Create the adapter for `spec`'s family. Family modules are imported only when used."""
    if isinstance(spec, EvmChainSpec):
        from chains.evm.adapter import EvmAdapter

        return EvmAdapter(spec)
    if isinstance(spec, HyperliquidChainSpec):
        from chains.hyperliquid.adapter import HyperliquidAdapter

        return HyperliquidAdapter(spec)
    from chains.solana.adapter import SolanaAdapter

    return SolanaAdapter(spec)
