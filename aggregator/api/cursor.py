"""Opaque page cursors: a position in a list, with a checksum so a cursor that was edited or
truncated is refused (422 naming `cursor`) rather than silently starting elsewhere.

A cursor is not a secret and grants nothing: it only says where the next page starts, and it
is bound to the resource it came from (a cursor of one user's history is refused on another's).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from aggregator.api.errors import ApiError

_KEY = b"xmargin-cursor-v1"
_MAC_BYTES = 8


def encode_cursor(scope: str, position: dict[str, Any]) -> str:
    """An opaque cursor for `position` within `scope` (e.g. `history:42`)."""
    payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(_KEY, scope.encode() + b"\0" + payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


def decode_cursor(scope: str, cursor: str, field: str = "cursor") -> dict[str, Any]:
    """The position a cursor of `scope` stands for.

    May raise: ApiError (422) when the cursor is malformed, edited, or of another scope.
    """
    refused = ApiError(422, "invalid_cursor", "not a cursor this endpoint gave out", field)
    if len(cursor) > 512:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        raise refused from None
    mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
    expected = hmac.new(_KEY, scope.encode() + b"\0" + payload, hashlib.sha256).digest()
    if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, expected[:_MAC_BYTES]):
        raise refused
    try:
        position = json.loads(payload)
    except ValueError:
        raise refused from None
    if not isinstance(position, dict):
        raise refused
    return position
