"""A Chainlink answer becomes a Decimal in quote units with every digit kept."""

from __future__ import annotations

from decimal import Decimal

from chains.evm.chainlink import scale_answer


def test_an_answer_of_any_int256_size_keeps_every_digit() -> None:
    answer = 2**255 - 1  # 77 digits: the default 28-digit context would round it
    text = str(answer)
    assert scale_answer(answer, 8) == Decimal(f"{text[:-8]}.{text[-8:]}")
    assert scale_answer(-335172810074, 8) == Decimal("-3351.72810074")
