"""What a repricing after the ETH feed's +10 % move leaves in the store, checked the same way by
the direct test (`publish.reprice`) and the queued one (`poll_shard` → `reprice`): the ETH
holder (2 ETH) is rewritten with exactly +600 USD of collateral, the USDC holder is not."""

from __future__ import annotations

from decimal import Decimal

from aggregator.store.database import Database
from aggregator.store.published.status_reads import get_status
from aggregator.store.published.statuses import StatusRecord


async def assert_only_the_eth_holder_repriced(
    db: Database,
    eth_user: int,
    usdc_user: int,
    eth_before: StatusRecord,
    usdc_before: StatusRecord,
) -> tuple[StatusRecord, StatusRecord]:
    """Check the two rows after the repricing; return them (ETH holder's, USDC holder's)."""
    async with db.session() as session:
        eth_after = await get_status(session, eth_user)
        usdc_after = await get_status(session, usdc_user)
    assert eth_after is not None and usdc_after is not None
    assert eth_after.seq == eth_before.seq + 1
    # 2 ETH at +300 USD each (the collateral value is unweighted), from the stored lines.
    moved = eth_after.document["collateral_value"]
    assert Decimal(moved) - Decimal(eth_before.document["collateral_value"]) == Decimal(600)
    # The USDC holder holds nothing whose price moved: same version, same instant.
    assert (usdc_after.seq, usdc_after.as_of) == (usdc_before.seq, usdc_before.as_of)
    return eth_after, usdc_after
