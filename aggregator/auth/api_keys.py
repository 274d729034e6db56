"""Operator API keys for front-end back ends: `xmk_<public id>_<secret>`.

The public id (12 hex characters) finds the key's row; the secret (256 random bits, 64 hex
characters) proves it. Only the SHA-256 of the whole key is stored: the secret is random, so a
slow password hash would add nothing. Verification always runs one SHA-256 and one
`hmac.compare_digest`, against a dummy hash when the id is unknown, so an unknown key and a
wrong key take the same time.

Scopes are ordered, each including the one before: `read` (status, history, stream, assets,
chains) ⊂ `link` (also create nonces and link wallets with proof for front-end users) ⊂ `admin`
(everything, including operator reads across users).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Literal

from aggregator.auth.errors import AuthError

Scope = Literal["read", "link", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "link", "admin")
KEY_PREFIX = "xmk"
_KEY = re.compile(r"^xmk_(?P<public_id>[0-9a-f]{12})_(?P<secret>[0-9a-f]{64})$")
# The hash of no key anyone holds: compared against when the public id is unknown.
_DUMMY_HASH = hashlib.sha256(b"xmk_000000000000_" + b"0" * 64 + b"-unknown").hexdigest()


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly made key: `key` is shown once and never stored."""

    public_id: str
    key: str = field(repr=False)
    key_hash: str = field(repr=False)


def scope_allows(granted: Scope, needed: Scope) -> bool:
    """True iff a key of scope `granted` may do what needs `needed` (admin ⊇ link ⊇ read)."""
    return SCOPES.index(granted) >= SCOPES.index(needed)


def parse_scope(text: str) -> Scope:
    """`read`, `link` or `admin`.

    May raise: AuthError (field `scope`, reason `malformed`).
    """
    for scope in SCOPES:
        if text == scope:
            return scope
    raise AuthError("scope", "malformed", f"scope must be one of {', '.join(SCOPES)}")


def hash_key(key: str) -> str:
    """The stored form of a key: hex SHA-256 of its UTF-8 text."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_api_key() -> NewApiKey:
    """A new random key with its public id and hash."""
    public_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{public_id}_{secrets.token_hex(32)}"
    return NewApiKey(public_id=public_id, key=key, key_hash=hash_key(key))


def public_id_of(presented: str) -> str:
    """The public id of a presented key.

    May raise: AuthError (field `authorization`, reason `malformed`: not `xmk_<id>_<secret>`).
    """
    match = _KEY.match(presented) if isinstance(presented, str) else None
    if match is None:
        raise AuthError("authorization", "malformed", "not an xmargin API key")
    return match["public_id"]


def key_matches(presented: str, stored_hash: str | None) -> bool:
    """True iff `presented` hashes to `stored_hash`. With `stored_hash` None (unknown id) the
    same work is done against a dummy hash and the answer is False."""
    expected = _DUMMY_HASH if stored_hash is None else stored_hash
    same = hmac.compare_digest(hash_key(presented).encode("ascii"), expected.encode("ascii"))
    return same and stored_hash is not None
