"""Webhook signatures: HMAC-SHA256 over `timestamp.body`, as Stripe and GitHub sign theirs."""

from __future__ import annotations

import hashlib
import hmac

from aggregator.alerts.outbox import canonical_body
from aggregator.alerts.signing import sign, signature_header, verify

SECRET = b"whsec_example"
BODY = canonical_body({"type": "margin_call", "id": "e1", "user": {"name": "bob", "id": 2}})


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    assert BODY == b'{"id":"e1","type":"margin_call","user":{"id":2,"name":"bob"}}'
    expected = hmac.new(SECRET, b"1767614400." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1_767_614_400, BODY) == expected
    assert signature_header(SECRET, 1_767_614_400, BODY) == f"t=1767614400,v1={expected}"


def test_verify_accepts_the_right_secret_within_tolerance_only() -> None:
    header = signature_header(SECRET, 1000, BODY)
    assert verify(SECRET, header, BODY, now=1000 + 299)
    assert not verify(SECRET, header, BODY, now=1000 + 301)  # a replay of an old delivery
    assert not verify(b"other", header, BODY, now=1000)
    assert not verify(SECRET, header, BODY + b" ", now=1000)
    assert not verify(SECRET, "v1=abc", BODY, now=1000)
    # During a rotation a sender may list one signature per secret.
    rotated = f"{header},v1={sign(b'new', 1000, BODY)}"
    assert verify(b"new", rotated, BODY, now=1000) and verify(SECRET, rotated, BODY, now=1000)
