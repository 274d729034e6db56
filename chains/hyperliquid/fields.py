"""JSON field readers shared by the Hyperliquid decoders: every amount a decimal string made
`Decimal`, every integer a JSON integer (or a digit string), anything else one `DecodeError`
line naming the field. Bodies are parsed with `parse_float=Decimal`: no float at any step."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any


class DecodeError(ValueError):
    """A response (or a line of one) that does not have the documented shape; one line."""


def parse_body(body: bytes) -> Any:
    """JSON with every non-integer number as Decimal. May raise: DecodeError (not JSON)."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise DecodeError(f"response is not JSON ({body[:60]!r})") from None


def field(obj: Any, key: str, where: str) -> Any:
    """`obj[key]`. May raise: DecodeError (not an object, or the key missing)."""
    if not isinstance(obj, dict):
        raise DecodeError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise DecodeError(f"{where}.{key}: missing")
    return obj[key]


def amount(obj: Any, key: str, where: str) -> Decimal:
    """A decimal string field as Decimal. May raise: DecodeError (absent, not a string, not a
    finite decimal)."""
    value = field(obj, key, where)
    if not isinstance(value, str):
        raise DecodeError(f"{where}.{key}: expected a decimal string, got {json_type(value)}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise DecodeError(f"{where}.{key}: {value[:30]!r} is not a decimal number") from None
    if not number.is_finite():
        raise DecodeError(f"{where}.{key}: {value!r} is not a finite number")
    return number


def optional_amount(obj: Any, key: str, where: str) -> Decimal | None:
    """`amount`, or None when the key is absent or null. May raise: DecodeError."""
    if not isinstance(obj, dict) or obj.get(key) is None:
        return None
    return amount(obj, key, where)


def integer(obj: Any, key: str, where: str) -> int:
    """A JSON integer (or a digit string) field. May raise: DecodeError."""
    value = field(obj, key, where)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise DecodeError(f"{where}.{key}: expected an integer, got {json_type(value)}")


def json_type(value: Any) -> str:
    """How a value reads in an error message. May raise: nothing."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:30]!r}"
    return "an array" if isinstance(value, list) else "an object"


def ulp(value: Decimal) -> Decimal:
    """One unit in the last shown digit: the rounding a venue figure carries. May raise: nothing."""
    exponent = value.as_tuple().exponent
    return Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
