"""Short-lived sign-in session tokens, scoped to one user and the account that proved it.

A token is `xms1.<key id>.<claims>.<mac>`: the claims are canonical JSON (`uid`, `acct` as
CAIP-10, `iat`, `exp` in unix seconds) in unpadded base64url, and the mac is HMAC-SHA256 under
the session key named by the key id, over everything before it. Verification accepts the
current key and the listed previous ones: rotating means a new current key (tokens already out
keep working while their old key stays listed); dropping a key from the list revokes every token
it signed. Macs are compared in constant time; claims are only decoded once the mac holds.

Key material never sits in config: each key id's secret (hex, at least 32 bytes) is read from
the environment variable `<env prefix>_<KEY ID>` (e.g. `XMARGIN_SESSION_KEY_S1`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aggregator.auth.errors import AuthError

TOKEN_PREFIX = "xms1"
MIN_SECRET_BYTES = 32
MAX_TOKEN_CHARS = 1024
KEY_ID = re.compile(r"^[a-z0-9]{1,16}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class SessionKeyError(ValueError):
    """A session key is missing or malformed; the message names the variable, never the key."""


@dataclass(frozen=True, slots=True)
class SessionKey:
    """One HMAC key and its id. Its repr shows the id only."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not KEY_ID.match(self.key_id):
            raise SessionKeyError(f"session key id {self.key_id!r}: use 1-16 of a-z, 0-9")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise SessionKeyError(
                f"session key {self.key_id}: needs at least {MIN_SECRET_BYTES} bytes"
            )


@dataclass(frozen=True, slots=True)
class SessionKeyring:
    """The key new tokens are signed with, and the previous keys still accepted."""

    current: SessionKey
    previous: tuple[SessionKey, ...] = ()

    def find(self, key_id: str) -> SessionKey | None:
        for key in (self.current, *self.previous):
            if key.key_id == key_id:
                return key
        return None


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """Who a verified token speaks for, and for how long."""

    user_id: int
    account: str  # CAIP-10 of the wallet that signed in
    issued_at: int  # unix seconds
    expires_at: int
    key_id: str


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: SessionKey, signed_part: str) -> bytes:
    return hmac.new(key.secret, signed_part.encode("ascii"), hashlib.sha256).digest()


def issue(
    keys: SessionKeyring, *, user_id: int, account: str, now: datetime, ttl_seconds: int
) -> tuple[str, SessionClaims]:
    """A token for `user_id` signed in with `account`, valid `ttl_seconds` from `now`, signed
    with the current key; and its claims.

    May raise: ValueError (a non-positive ttl or user id).
    """
    if ttl_seconds <= 0 or user_id <= 0:
        raise ValueError("ttl_seconds and user_id must be positive")
    issued_at = int(now.timestamp())
    claims = SessionClaims(
        user_id=user_id,
        account=account,
        issued_at=issued_at,
        expires_at=issued_at + ttl_seconds,
        key_id=keys.current.key_id,
    )
    body = json.dumps(
        {"acct": account, "exp": claims.expires_at, "iat": issued_at, "uid": user_id},
        sort_keys=True,
        separators=(",", ":"),
    )
    signed_part = f"{TOKEN_PREFIX}.{keys.current.key_id}.{_b64encode(body.encode('utf-8'))}"
    return f"{signed_part}.{_b64encode(_mac(keys.current, signed_part))}", claims


def verify(token: str, keys: SessionKeyring, now: datetime) -> SessionClaims:
    """The claims of `token` if a key of `keys` signed it and it has not expired at `now`.

    May raise: AuthError (field `token`; reason `malformed`, `bad_signature` (another key, a
    dropped key, or a changed token) or `expired`).
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise AuthError("token", "malformed", "not a session token")
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != TOKEN_PREFIX:
        raise AuthError("token", "malformed", "not a session token")
    _, key_id, body_text, mac_text = parts
    if not KEY_ID.match(key_id) or not _B64URL.match(body_text) or not _B64URL.match(mac_text):
        raise AuthError("token", "malformed", "not a session token")
    try:
        presented_mac = _b64decode(mac_text)
    except (binascii.Error, ValueError):
        raise AuthError("token", "malformed", "not a session token") from None
    key = keys.find(key_id)
    if key is None:
        raise AuthError("token", "bad_signature", "the token is signed by a key not accepted")
    if not hmac.compare_digest(presented_mac, _mac(key, token.rpartition(".")[0])):
        raise AuthError("token", "bad_signature", "the token's signature does not match")
    claims = _claims(body_text, key_id)
    if int(now.timestamp()) >= claims.expires_at:
        raise AuthError("token", "expired", "the session has expired: sign in again")
    return claims


def _claims(body_text: str, key_id: str) -> SessionClaims:
    try:
        body: Any = json.loads(_b64decode(body_text))
    except (binascii.Error, ValueError):
        raise AuthError("token", "malformed", "the token's claims are not JSON") from None
    fields = ("acct", "exp", "iat", "uid")
    if not isinstance(body, dict) or sorted(body) != list(fields):
        raise AuthError("token", "malformed", "the token's claims are incomplete")
    numbers = [body[name] for name in ("exp", "iat", "uid")]
    if not isinstance(body["acct"], str) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in numbers
    ):
        raise AuthError("token", "malformed", "the token's claims have the wrong types")
    return SessionClaims(
        user_id=body["uid"],
        account=body["acct"],
        issued_at=body["iat"],
        expires_at=body["exp"],
        key_id=key_id,
    )


def key_env_name(env_prefix: str, key_id: str) -> str:
    """The environment variable holding the secret of `key_id`: `<prefix>_<KEY ID>`."""
    return f"{env_prefix}_{key_id.upper()}"


def load_session_keyring(
    current_id: str,
    previous_ids: Iterable[str],
    *,
    env_prefix: str,
    environ: Mapping[str, str] | None = None,
) -> SessionKeyring | None:
    """The keyring from the environment, or None when the current key's variable is unset
    (sessions are then unavailable). A listed previous key must be set too.

    May raise: SessionKeyError (a variable that is not hex of at least 32 bytes, or a listed
    previous key that is unset; the message names the variable, never its value).
    """
    environ = os.environ if environ is None else environ
    current_name = key_env_name(env_prefix, current_id)
    if not environ.get(current_name, "").strip():
        return None

    def load(key_id: str) -> SessionKey:
        name = key_env_name(env_prefix, key_id)
        text = environ.get(name, "").strip()
        if not text:
            raise SessionKeyError(f"{name} is not set (session key {key_id} is listed)")
        try:
            secret = bytes.fromhex(text.removeprefix("0x"))
        except ValueError:
            raise SessionKeyError(f"{name} is not hex") from None
        if len(secret) < MIN_SECRET_BYTES:
            raise SessionKeyError(f"{name} must hold at least {MIN_SECRET_BYTES} bytes (hex)")
        return SessionKey(key_id, secret)

    return SessionKeyring(load(current_id), tuple(load(k) for k in previous_ids if k != current_id))
