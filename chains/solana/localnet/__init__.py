"""A local Solana JSON-RPC server over LiteSVM, for tests and the demo.

In-process: `with LocalSolana() as chain: ...` serves on a background thread at `chain.url`.
As a subprocess: `python -m chains.solana.localnet --port 8899 --seed-demo`.
"""

from chains.solana.localnet.chain import LocalChainError, LocalSolana, keypair_from_seed
from chains.solana.localnet.demo import (
    DEMO_SOLANA,
    DemoSolana,
    demo_spec,
    seed_demo_world,
    set_demo_prices,
)

__all__ = [
    "DEMO_SOLANA",
    "DemoSolana",
    "LocalChainError",
    "LocalSolana",
    "demo_spec",
    "keypair_from_seed",
    "seed_demo_world",
    "set_demo_prices",
]
