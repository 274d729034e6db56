"""`ws_url` on a chain: a ws(s) URL, on Solana chains only, optional."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aggregator.config_tables import ChainConfig

SOLANA = {"family": "solana", "genesis_hash": "G" * 32, "rpc_urls": ["http://127.0.0.1:8899"]}


def test_a_solana_chain_takes_a_websocket_url_or_none() -> None:
    assert ChainConfig(**SOLANA).ws_url is None
    assert ChainConfig(**SOLANA, ws_url="wss://rpc.example/KEY").ws_url == "wss://rpc.example/KEY"


def test_ws_url_must_be_a_websocket_url_on_a_solana_chain() -> None:
    with pytest.raises(ValidationError, match="is not a ws\\(s\\) URL"):
        ChainConfig(**SOLANA, ws_url="http://127.0.0.1:8900")
    with pytest.raises(ValidationError, match="ws_url is for solana chains"):
        ChainConfig(family="evm", chain_id=1, rpc_urls=["http://127.0.0.1:8545"], ws_url="ws://x:1")
