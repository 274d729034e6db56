"""Log decoding of the head follower: each event yields the accounts it changed, from topics
and data encoded as the chain encodes them (eth_abi), and only for configured contracts."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode

from chains.evm.address import to_checksum
from chains.evm.logs import (
    AAVE_EVENTS,
    TRANSFER,
    ZERO_ADDRESS,
    LogQuery,
    encode_topic_address,
    is_range_refusal,
    touched_addresses,
)

TOKEN = "0x1111111111111111111111111111111111111111"
POOL = "0x2222222222222222222222222222222222222222"
RESERVE = "0x3333333333333333333333333333333333333333"
ALICE = to_checksum("00000000000000000000000000000000000a11ce")
BOB = to_checksum("0000000000000000000000000000000000000b0b")
CAROL = to_checksum("00000000000000000000000000000000000ca201")
QUERY = LogQuery(tokens=(TOKEN,), pools=(POOL,))
EVENTS = {event.name: event for event in AAVE_EVENTS}


def _log(
    emitter: str, topic0: str, topics: list[str], types: list[str], values: list[Any]
) -> dict[str, Any]:
    return {
        "address": emitter,
        "topics": [
            topic0,
            *(
                encode_topic_address(t) if t.startswith("0x") and len(t) == 42 else t
                for t in topics
            ),
        ],
        "data": "0x" + encode(types, values).hex(),
    }


def test_a_transfer_touches_sender_and_receiver_and_a_mint_only_the_receiver() -> None:
    transfer = _log(TOKEN, TRANSFER.topic0, [ALICE, BOB], ["uint256"], [5])
    mint = _log(TOKEN, TRANSFER.topic0, [ZERO_ADDRESS, CAROL], ["uint256"], [5])
    assert touched_addresses([transfer], QUERY) == {ALICE, BOB}
    assert touched_addresses([mint], QUERY) == {CAROL}


def test_each_aave_event_touches_the_accounts_it_names() -> None:
    referral = "0x" + "00" * 32
    cases = {
        "Supply": ([RESERVE, BOB, referral], ["address", "uint256"], [ALICE, 1], {ALICE, BOB}),
        "Withdraw": ([RESERVE, ALICE, BOB], ["uint256"], [1], {ALICE, BOB}),
        "Borrow": (
            [RESERVE, BOB, referral],
            ["address", "uint256", "uint8", "uint256"],
            [ALICE, 1, 2, 3],
            {ALICE, BOB},
        ),
        "Repay": ([RESERVE, ALICE, BOB], ["uint256", "bool"], [1, False], {ALICE, BOB}),
        "LiquidationCall": (
            [RESERVE, RESERVE, ALICE],
            ["uint256", "uint256", "address", "bool"],
            [1, 2, CAROL, True],
            {ALICE, CAROL},
        ),
    }
    for name, (topics, types, values, expected) in cases.items():
        log = _log(POOL, EVENTS[name].topic0, topics, types, values)
        assert touched_addresses([log], QUERY) == expected, name


def test_logs_of_other_contracts_and_removed_logs_touch_nothing() -> None:
    elsewhere = _log(RESERVE, TRANSFER.topic0, [ALICE, BOB], ["uint256"], [5])
    pool_transfer = _log(POOL, TRANSFER.topic0, [ALICE, BOB], ["uint256"], [5])
    removed = {**_log(TOKEN, TRANSFER.topic0, [ALICE, BOB], ["uint256"], [5]), "removed": True}
    assert touched_addresses([elsewhere, pool_transfer, removed], QUERY) == set()


def test_a_range_refusal_is_told_from_an_endpoint_failure() -> None:
    assert is_range_refusal(
        "a: logs 1-9 failed on every endpoint "
        "(u: JSON-RPC error -32005: query returned more than 10000 results)"
    )
    assert is_range_refusal("JSON-RPC error -32602: eth_getLogs block range too large")
    assert not is_range_refusal("a: logs 1-9 failed on every endpoint (u: HTTP 502: 'upstream')")
    assert not is_range_refusal(
        "a: logs 1-9 failed on every endpoint (u: timed out (TimeoutError))"
    )
