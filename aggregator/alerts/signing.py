"""Webhook signatures, as Stripe and GitHub do them: HMAC-SHA256 over `timestamp.body`.

Header: `X-Xmargin-Signature: t=<unix seconds>,v1=<hex digest>`. A receiver recomputes the
digest with its copy of the secret, compares in constant time, and refuses a timestamp outside
its tolerance (a replayed old delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Xmargin-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`. May raise: nothing."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `X-Xmargin-Signature` value for `body` sent at `timestamp`. May raise: nothing."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(
    secret: bytes,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when `header` carries a `v1` signature of `body` under `secret` whose timestamp is
    within `tolerance_seconds` of `now`. Several `v1` entries (secret rotation) are allowed.
    May raise: nothing (a malformed header is False)."""
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            digests.append(value)
    if timestamp is None or not digests:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, digest) for digest in digests)
