"""API keys: their shape, the stored hash, scope inclusion, and the same work for unknown and
wrong keys."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from aggregator.auth import api_keys
from aggregator.auth.api_keys import (
    generate_api_key,
    hash_key,
    key_matches,
    parse_scope,
    public_id_of,
    scope_allows,
)
from aggregator.auth.errors import AuthError


def test_a_new_key_has_a_public_id_a_256_bit_secret_and_its_sha256() -> None:
    made = generate_api_key()
    match = re.fullmatch(r"xmk_([0-9a-f]{12})_([0-9a-f]{64})", made.key)
    assert match is not None
    assert match[1] == made.public_id
    assert made.key_hash == hashlib.sha256(made.key.encode()).hexdigest()
    assert made.key not in repr(made) and made.key_hash not in repr(made)


def test_two_keys_differ() -> None:
    assert generate_api_key().key != generate_api_key().key


def test_the_key_matches_its_hash_and_nothing_else() -> None:
    made = generate_api_key()
    assert key_matches(made.key, made.key_hash)
    assert not key_matches(generate_api_key().key, made.key_hash)
    assert not key_matches(made.key, None)


def test_public_id_is_read_from_a_well_formed_key() -> None:
    made = generate_api_key()
    assert public_id_of(made.key) == made.public_id


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "xmk_",
        "xmk_abc_def",
        "Bearer xmk_0123456789ab_" + "0" * 64,
        "xmk_0123456789AB_" + "0" * 64,
    ],
)
def test_a_badly_shaped_key_is_malformed(presented: str) -> None:
    with pytest.raises(AuthError) as caught:
        public_id_of(presented)
    assert (caught.value.field, caught.value.reason) == ("authorization", "malformed")


@pytest.mark.parametrize(
    ("granted", "needed", "allowed"),
    [
        ("read", "read", True),
        ("read", "link", False),
        ("read", "admin", False),
        ("link", "read", True),
        ("link", "link", True),
        ("link", "admin", False),
        ("admin", "read", True),
        ("admin", "link", True),
        ("admin", "admin", True),
    ],
)
def test_scopes_include_the_lower_ones(granted: str, needed: str, allowed: bool) -> None:
    assert scope_allows(parse_scope(granted), parse_scope(needed)) is allowed


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(AuthError) as caught:
        parse_scope("write")
    assert caught.value.field == "scope"


def test_unknown_and_wrong_keys_do_the_same_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", recording)
    stored = generate_api_key()
    wrong = generate_api_key().key
    assert not key_matches(wrong, stored.key_hash)
    assert not key_matches(wrong, None)
    assert compared == [(64, 64), (64, 64)]
    assert hash_key(wrong) != api_keys._DUMMY_HASH
