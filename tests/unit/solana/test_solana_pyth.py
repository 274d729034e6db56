"""Pyth PriceUpdateV2 (both verification levels) and legacy price accounts on real bytes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from solana_fixtures import b64, load

from chains.base import EndpointPolicy
from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.pyth import (
    decode_legacy_price_account,
    decode_price_update_v2,
)
from chains.solana.lines import RawAccount, build_lines
from chains.solana.plan import build_plan
from chains.solana.spec import PYTH_RECEIVER_PROGRAM, PythFeed, SolanaChainSpec

UPDATES = load("pyth_price_update_v2.json")
LEGACY = load("pyth_legacy_price_account_AAPL.json")


@pytest.mark.parametrize("sample", UPDATES["samples"], ids=lambda s: s["account_key"][:8])
def test_real_price_update_v2_accounts_decode_to_the_stated_values(sample: dict[str, Any]) -> None:
    expected = sample["decoded_by_us"]
    message = expected["price_message"]

    update = decode_price_update_v2(b64(sample["data_base64"]))

    assert update.verification_level == expected["verification_level"]["kind"]
    assert update.num_signatures == expected["verification_level"].get("num_signatures")
    assert update.write_authority == expected["write_authority"]
    assert update.feed_id == message["feed_id"]
    assert (update.price, update.conf, update.exponent) == (
        message["price"],
        message["conf"],
        message["exponent"],
    )
    assert (update.publish_time, update.prev_publish_time) == (
        message["publish_time"],
        message["prev_publish_time"],
    )
    assert (update.ema_price, update.ema_conf) == (message["ema_price"], message["ema_conf"])
    assert update.posted_slot == expected["posted_slot"]
    assert update.price_decimal == Decimal(str(sample["human"]["price"]))


def test_partial_and_full_verification_place_the_message_one_byte_apart() -> None:
    full = decode_price_update_v2(b64(UPDATES["samples"][1]["data_base64"]))  # SOL, Full
    partial = decode_price_update_v2(b64(UPDATES["samples"][3]["data_base64"]))  # SOL, Partial
    assert full.feed_id == partial.feed_id
    assert full.price_decimal == Decimal("134.67731930")
    assert partial.price_decimal == Decimal("196.18693617")


def test_a_non_price_update_account_is_rejected() -> None:
    with pytest.raises(AccountDecodeError, match="discriminator"):
        decode_price_update_v2(bytes(134))


def test_legacy_aapl_price_account_decodes_to_the_upstream_expected_values() -> None:
    expected = LEGACY["expected_from_upstream_test"]

    account = decode_legacy_price_account(b64(LEGACY["data_base64"]))

    assert account.exponent == -5
    assert account.num_components == 29
    assert (account.last_slot, account.valid_slot) == (197_635_583, 197_635_582)
    assert account.product_account == expected["product_account"]
    assert account.max_latency == 50
    assert account.min_publishers == 3
    assert account.next_price_account is None
    assert (account.agg_price, account.agg_conf) == (23_623_373, 14_454)
    assert (account.agg_status, account.agg_pub_slot) == (1, 197_635_583)
    assert (account.price_decimal, account.conf_decimal) == (
        Decimal("236.23373"),
        Decimal("0.14454"),
    )
    first = account.components[0]
    assert first.publisher == "JTmFx5zX9mM94itfk2nQcJnQQDPjcv4UPD7SYj6xDCV"
    assert (first.agg_price, first.agg_conf, first.agg_status, first.agg_pub_slot) == (
        23_622_000,
        50_363,
        1,
        197_635_580,
    )
    assert (first.latest_price, first.latest_pub_slot) == (23_622_000, 197_635_580)


SOL = UPDATES["samples"][3]  # Partial, SOL/USD, publish_time 1734648611
SOL_FEED = "0xef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d"


def _observe(
    data: bytes, *, owner: str = PYTH_RECEIVER_PROGRAM, feed_id: str = SOL_FEED, at: int
) -> Any:
    feed = PythFeed("SOL", SOL["account_key"], feed_id, max_conf_ratio=Decimal("0.01"))
    spec = SolanaChainSpec("solana", "x" * 32, EndpointPolicy(("http://unused",)), feeds=(feed,))
    plan = build_plan(spec, [])
    lines = build_lines(spec, plan, {SOL["account_key"]: RawAccount(owner, 1, data)}, at)
    return lines.prices[0]


def test_a_fresh_real_price_passes_every_check() -> None:
    observation = _observe(b64(SOL["data_base64"]), at=1_734_648_611 + 10)
    assert observation.valid
    assert (observation.price, observation.conf) == (Decimal("196.18693617"), Decimal("0.22929999"))
    assert observation.publish_time == 1_734_648_611


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"owner": "11111111111111111111111111111111"}, "not a Pyth receiver program"),
        ({"feed_id": "0x" + "00" * 32}, "feed id"),
        ({"at": 1_734_648_611 + 301}, "published 301s before the slot"),
    ],
)
def test_a_price_failing_a_check_is_invalid_with_the_reason(
    kwargs: dict[str, Any], reason: str
) -> None:
    arguments: dict[str, Any] = {"at": 1_734_648_611, **kwargs}
    observation = _observe(b64(SOL["data_base64"]), **arguments)
    assert not observation.valid
    assert reason in observation.invalid_reason


def test_a_price_with_too_wide_confidence_is_invalid() -> None:
    data = bytearray(b64(SOL["data_base64"]))
    data[42 + 40 : 42 + 48] = (3_000_000_000).to_bytes(8, "little")  # conf $30 on $196
    observation = _observe(bytes(data), at=1_734_648_611)
    assert not observation.valid
    assert "conf/price 0.1529 exceeds 0.01" in observation.invalid_reason


def test_a_legacy_price_account_configured_as_a_feed_is_rejected_clearly() -> None:
    observation = _observe(b64(LEGACY["data_base64"]), at=1_739_388_661)
    assert not observation.valid
    assert "legacy Pyth price account" in observation.invalid_reason
