# pragma version 0.4.3
"""
@title DevAggregator
@notice A Chainlink AggregatorV3Interface look-alike whose answer the deployer sets.
"""

decimals: public(uint8)
description: public(String[32])
version: public(uint256)
owner: public(address)

round_id: uint80
answer: int256
started_at: uint256
updated_at: uint256


@deploy
def __init__(decimals_: uint8, description_: String[32], answer_: int256):
    self.decimals = decimals_
    self.description = description_
    self.version = 4
    self.owner = msg.sender
    self.round_id = 1
    self.answer = answer_
    self.started_at = block.timestamp
    self.updated_at = block.timestamp


@view
@external
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    return (self.round_id, self.answer, self.started_at, self.updated_at, self.round_id)


@view
@external
def latestAnswer() -> int256:
    return self.answer


@external
def set_answer(answer_: int256):
    """@notice A new round with `answer_`, updated now."""
    assert msg.sender == self.owner, "only owner"
    self.round_id += 1
    self.answer = answer_
    self.started_at = block.timestamp
    self.updated_at = block.timestamp


@external
def set_round(answer_: int256, updated_at_: uint256):
    """@notice A new round with an explicit updatedAt (0 = never completed, old = stale)."""
    assert msg.sender == self.owner, "only owner"
    self.round_id += 1
    self.answer = answer_
    self.started_at = updated_at_
    self.updated_at = updated_at_
