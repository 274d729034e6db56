"""Registers every chain family's harness; each contract test runs once per harness.

To add a family: import its session fixture here and append its name to HARNESSES.
"""

from __future__ import annotations

import pytest

from tests.adapter_contract.evm_harness import evm_harness
from tests.adapter_contract.harness import AdapterHarness
from tests.adapter_contract.hyperliquid_harness import hyperliquid_harness
from tests.adapter_contract.solana_harness import solana_harness

__all__ = ["evm_harness", "hyperliquid_harness", "solana_harness"]

HARNESSES = ["evm_harness", "solana_harness", "hyperliquid_harness"]


@pytest.fixture(params=HARNESSES)
def harness(request: pytest.FixtureRequest) -> AdapterHarness:
    fixture: AdapterHarness = request.getfixturevalue(request.param)
    return fixture
