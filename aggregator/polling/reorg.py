"""Judge a new read point against the heads already stored: which are orphaned, or whether the
new read must be refused. Pure: the poll gives it rows and the adapter's answers.

- A stored head whose height the chain now answers with another hash (or, on Solana, whose
  slot the finalized chain skipped) is orphaned. On a hash-linked chain (EVM) every stored head
  above the lowest such height is orphaned too: its block descended from a replaced one.
- A new read at a height already stored with another hash is the same thing seen directly.
- A new read lower than the newest stored head of the same finality that is still canonical
  (no reorg explains it) comes from a node that is behind: it is refused, the data kept, and
  nothing is orphaned on its word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aggregator.store.observed.observations import Orphaning, StoredHead
from chains.base import HeadCheck, ReadPoint


@dataclass(frozen=True, slots=True)
class HeadVerdict:
    """What a poll does with its snapshot: orphan these stored heads, then store it, unless
    `refusal` says why it must not be stored."""

    orphanings: tuple[Orphaning, ...] = ()
    refusal: str | None = None


def judge_read_point(
    stored: Sequence[StoredHead],
    point: ReadPoint,
    checks: Sequence[HeadCheck],
    *,
    endpoint: str | None,
    hash_linked: bool = True,
) -> HeadVerdict:
    """The verdict on a new `point` read with `checks`, given the chain's recent `stored`
    heads (not orphaned). May raise: nothing."""
    answers = {check.height: check for check in checks}
    reasons: dict[int, str] = {}
    for head in stored:
        check = answers.get(head.height)
        if head.height == point.height and head.block_hash != point.block_hash:
            reasons[head.id] = (
                f"block {head.height} was {head.block_hash}, the chain now has "
                f"{point.block_hash} at that height"
            )
        elif check is not None and check.skipped:
            reasons[head.id] = f"slot {head.height} was skipped by the finalized chain"
        elif check is not None and check.block_hash not in (None, head.block_hash):
            reasons[head.id] = (
                f"block {head.height} was {head.block_hash}, the chain now has "
                f"{check.block_hash} at that height"
            )
    if hash_linked and reasons:
        fork = min(head.height for head in stored if head.id in reasons)
        for head in stored:
            if head.height > fork and head.id not in reasons:
                reasons[head.id] = f"block {head.height} descends from replaced block {fork}"
    orphanings = tuple(
        Orphaning(head.id, head.height, reasons[head.id]) for head in stored if head.id in reasons
    )
    kept = [h for h in stored if h.id not in reasons and h.finality == point.finality]
    newest = max((h.height for h in kept), default=None)
    if newest is not None and point.height < newest:
        # A node behind the stored head is not trusted to orphan anything either.
        return HeadVerdict(
            refusal=(
                f"endpoint {endpoint or '?'} returned {point.finality} head {point.height}, "
                f"lower than the stored head {newest}: refused, the last good data stays"
            ),
        )
    return HeadVerdict(orphanings=orphanings)
