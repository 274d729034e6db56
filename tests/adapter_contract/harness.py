"""What the adapter contract suite needs from a chain family's test harness.

Each family (EVM over anvil, Solana over the local LiteSVM RPC, Hyperliquid over the local
info server) provides one harness; the same tests in test_contract.py run over every harness.
Harnesses run real nodes: no mocks.
"""

from __future__ import annotations

from typing import Protocol

from chains.base import Address, ChainAdapter, ReadPoint


class AdapterHarness(Protocol):
    family: str  # "evm" | "solana" | "hyperliquid"
    token_assets: tuple[str, ...]  # configured token assets (not the native coin)
    native_asset: str

    async def new_wallet(self) -> Address:
        """A fresh wallet with nothing on it."""
        ...

    async def credit(self, wallet: Address, asset: str, amount_raw: int) -> None:
        """Give `wallet` `amount_raw` more of `asset`, and advance the chain far enough that the
        change is visible at the adapter's pinned read point."""
        ...

    async def credit_unfinalized(self, wallet: Address, asset: str, amount_raw: int) -> None:
        """Give `wallet` more of `asset` after the current pinned read point: the adapter, reading
        now at its configured finality, must not see it."""
        ...

    async def read_point_at_finality(self) -> ReadPoint:
        """The node's own block/slot (height and hash) at the adapter's configured finality,
        as the node reports it now (asked directly, not through the adapter)."""
        ...

    def adapter(self, urls: tuple[str, ...] | None = None) -> ChainAdapter:
        """An adapter for the harness chain; `urls` overrides the endpoint list (failover tests)."""
        ...

    @property
    def node_url(self) -> str:
        """The URL of the live node."""
        ...

    @property
    def dead_url(self) -> str:
        """A URL on which nothing listens."""
        ...

    @property
    def garbage_url(self) -> str:
        """A local HTTP server answering every request with HTTP 200 and a body that is not
        JSON-RPC."""
        ...
