"""Session tokens: HMAC-SHA256 under the current key, verified against current and previous
keys; tampering, another key, a dropped key and expiry are told apart."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.auth.errors import AuthError
from aggregator.auth.tokens import (
    SessionKey,
    SessionKeyError,
    SessionKeyring,
    issue,
    load_session_keyring,
    verify,
)

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
ACCOUNT = "eip155:1:0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
K1 = SessionKey("s1", bytes(range(32)))
K2 = SessionKey("s2", bytes(range(100, 140)))


def _token(keys: SessionKeyring = SessionKeyring(K1)) -> str:
    token, _ = issue(keys, user_id=42, account=ACCOUNT, now=NOW, ttl_seconds=600)
    return token


def _reason(token: str, keys: SessionKeyring, now: datetime = NOW) -> str:
    with pytest.raises(AuthError) as caught:
        verify(token, keys, now)
    assert caught.value.field == "token"
    return caught.value.reason


def test_a_fresh_token_verifies_to_its_claims() -> None:
    token, issued = issue(SessionKeyring(K1), user_id=42, account=ACCOUNT, now=NOW, ttl_seconds=600)
    claims = verify(token, SessionKeyring(K1), NOW + timedelta(seconds=599))
    assert claims == issued
    assert (claims.user_id, claims.account, claims.key_id) == (42, ACCOUNT, "s1")
    assert claims.expires_at - claims.issued_at == 600
    assert claims.issued_at == int(NOW.timestamp())
    assert token.startswith("xms1.s1.")


def test_a_token_expires_at_its_expiry_second() -> None:
    assert _reason(_token(), SessionKeyring(K1), NOW + timedelta(seconds=600)) == "expired"


def test_changed_claims_break_the_signature() -> None:
    prefix, key_id, body, mac = _token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["uid"] = 43
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _reason(f"{prefix}.{key_id}.{forged}.{mac}", SessionKeyring(K1)) == "bad_signature"


def test_a_changed_mac_is_a_bad_signature() -> None:
    token = _token()
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert _reason(flipped, SessionKeyring(K1)) == "bad_signature"


def test_a_token_signed_with_another_key_of_the_same_id_is_refused() -> None:
    impostor = SessionKeyring(SessionKey("s1", b"\x07" * 32))
    assert _reason(_token(impostor), SessionKeyring(K1)) == "bad_signature"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "xms1.s1.abc",
        "xms2.s1.abc.def",
        "xms1.S1.abc.def",
        "xms1.s1.a b.c",
        "x" * 2000,
    ],
)
def test_malformed_tokens_are_named_malformed(token: str) -> None:
    assert _reason(token, SessionKeyring(K1)) == "malformed"


def test_a_validly_signed_body_that_is_not_claims_is_malformed() -> None:
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(b'{"uid":1}').rstrip(b"=").decode()
    signed = f"xms1.s1.{body}"
    mac = hmac.new(K1.secret, signed.encode(), hashlib.sha256).digest()
    token = f"{signed}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert _reason(token, SessionKeyring(K1)) == "malformed"


def test_rotation_keeps_old_tokens_while_the_old_key_is_listed() -> None:
    old_token = _token(SessionKeyring(K1))
    rotated = SessionKeyring(K2, previous=(K1,))
    assert verify(old_token, rotated, NOW).key_id == "s1"
    new_token = _token(rotated)
    assert new_token.startswith("xms1.s2.")
    assert verify(new_token, rotated, NOW).key_id == "s2"


def test_dropping_a_key_revokes_its_tokens() -> None:
    old_token = _token(SessionKeyring(K1))
    assert _reason(old_token, SessionKeyring(K2)) == "bad_signature"


def test_a_key_never_shows_its_secret() -> None:
    assert repr(K1) == "SessionKey(key_id='s1')"


def test_keyring_loads_from_the_environment_by_key_id() -> None:
    environ = {"XMARGIN_SESSION_KEY_S2": "ab" * 32, "XMARGIN_SESSION_KEY_S1": "0x" + "cd" * 40}
    keys = load_session_keyring("s2", ["s1"], env_prefix="XMARGIN_SESSION_KEY", environ=environ)
    assert keys is not None
    assert keys.current == SessionKey("s2", b"\xab" * 32)
    assert keys.previous == (SessionKey("s1", b"\xcd" * 40),)


def test_keyring_is_none_without_the_current_key() -> None:
    assert load_session_keyring("s1", [], env_prefix="XMARGIN_SESSION_KEY", environ={}) is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"XMARGIN_SESSION_KEY_S1": "zz" * 32}, "XMARGIN_SESSION_KEY_S1 is not hex"),
        ({"XMARGIN_SESSION_KEY_S1": "ab" * 16}, "XMARGIN_SESSION_KEY_S1 must hold at least"),
        ({"XMARGIN_SESSION_KEY_S1": "ab" * 32}, "XMARGIN_SESSION_KEY_S0 is not set"),
    ],
)
def test_keyring_errors_name_the_variable_not_the_value(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(SessionKeyError) as caught:
        load_session_keyring("s1", ["s0"], env_prefix="XMARGIN_SESSION_KEY", environ=environ)
    assert str(caught.value).startswith(named)
    assert environ["XMARGIN_SESSION_KEY_S1"] not in str(caught.value)
