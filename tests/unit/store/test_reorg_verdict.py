"""`judge_read_point`: which stored heads a new read orphans, and when it is refused."""

from __future__ import annotations

from aggregator.polling.reorg import judge_read_point
from aggregator.store.observed.observations import StoredHead
from chains.base import HeadCheck, ReadPoint

URL = "http://node.example"


def _head(head_id: int, height: int, block_hash: str, finality: str = "latest") -> StoredHead:
    return StoredHead(head_id, height, block_hash, finality)


def _point(height: int, block_hash: str) -> ReadPoint:
    return ReadPoint(height, block_hash, 1_700_000_000, "latest")


def test_an_unchanged_chain_orphans_nothing() -> None:
    stored = [_head(2, 11, "0xb"), _head(1, 10, "0xa")]
    checks = [HeadCheck(11, "0xb"), HeadCheck(10, "0xa")]
    verdict = judge_read_point(stored, _point(12, "0xc"), checks, endpoint=URL)
    assert (verdict.orphanings, verdict.refusal) == ((), None)


def test_a_changed_hash_orphans_that_head_and_every_stored_head_above_it() -> None:
    stored = [_head(3, 12, "0xc"), _head(2, 11, "0xb"), _head(1, 10, "0xa")]
    checks = [HeadCheck(12, None), HeadCheck(11, "0xB2"), HeadCheck(10, "0xa")]
    verdict = judge_read_point(stored, _point(11, "0xB2"), checks, endpoint=URL)
    assert verdict.refusal is None
    assert [(o.head_id, o.height) for o in verdict.orphanings] == [(3, 12), (2, 11)]
    assert "0xB2" in verdict.orphanings[1].reason
    assert verdict.orphanings[0].reason == "block 12 descends from replaced block 11"


def test_the_same_height_read_twice_with_two_hashes_orphans_the_first() -> None:
    verdict = judge_read_point([_head(1, 10, "0xa")], _point(10, "0xA2"), [], endpoint=URL)
    assert [o.head_id for o in verdict.orphanings] == [1]


def test_a_head_below_the_stored_one_without_a_reorg_is_refused_naming_the_endpoint() -> None:
    stored = [_head(2, 12, "0xc"), _head(1, 10, "0xa")]
    checks = [HeadCheck(12, None), HeadCheck(10, "0xa")]
    verdict = judge_read_point(stored, _point(11, "0xb"), checks, endpoint=URL)
    assert verdict.orphanings == ()
    assert verdict.refusal is not None and URL in verdict.refusal and "12" in verdict.refusal


def test_a_lower_head_of_another_finality_is_not_compared() -> None:
    stored = [_head(1, 20, "0xf", finality="finalized")]
    verdict = judge_read_point(stored, _point(18, "0xe"), [], endpoint=URL)
    assert verdict.refusal is None


def test_solana_skipped_slots_are_orphaned_one_by_one() -> None:
    stored = [_head(2, 1005, "h5", "confirmed"), _head(1, 1003, "h3", "confirmed")]
    checks = [HeadCheck(1003, None, skipped=True), HeadCheck(1005, None)]
    point = ReadPoint(1010, "h10", 1_700_000_000, "confirmed")
    verdict = judge_read_point(stored, point, checks, endpoint=URL, hash_linked=False)
    assert [(o.head_id, o.reason) for o in verdict.orphanings] == [
        (1, "slot 1003 was skipped by the finalized chain")
    ]
