"""The signed link / sign-in text: exact EIP-4361 and CAIP-122 rendering, and a strict parser
that names the field at fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from solders.keypair import Keypair

from aggregator.auth.errors import AuthError
from aggregator.auth.siwe import SignInMessage, build_message, check_message, parse, render

ISSUED = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
EVM_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SOLANA_CHAIN = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"

EXPECTED_EVM_TEXT = """app.example:8443 wants you to sign in with your Ethereum account:
0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266

Link this account to xmargin user 7.

URI: https://app.example:8443/link
Version: 1
Chain ID: 42161
Nonce: 0123456789abcdef0123456789abcdef
Issued At: 2026-12-01T12:00:00Z
Expiration Time: 2026-12-01T12:05:00Z
Resources:
- urn:xmargin:user:7"""


def _evm_message(**overrides: object) -> SignInMessage:
    fields: dict[str, object] = {
        "domain": "app.example:8443",
        "address": EVM_ADDRESS,
        "uri": "https://app.example:8443/link",
        "chain": "eip155:42161",
        "nonce": "0123456789abcdef0123456789abcdef",
        "issued_at": ISSUED,
        "expiration_time": ISSUED + timedelta(minutes=5),
        "user_id": 7,
        "purpose": "link",
    }
    fields.update(overrides)
    return build_message(**fields)  # type: ignore[arg-type]


def _refusal(text: str) -> tuple[str, str]:
    with pytest.raises(AuthError) as caught:
        parse(text)
    return caught.value.field, caught.value.reason


def test_evm_message_renders_exact_eip4361_text_and_parses_back() -> None:
    message = _evm_message()
    text = render(message)
    assert text == EXPECTED_EVM_TEXT
    assert parse(text) == message
    assert message.account == f"eip155:42161:{EVM_ADDRESS}"


def test_signin_purpose_is_in_the_statement() -> None:
    text = render(_evm_message(purpose="signin"))
    assert text.splitlines()[3] == "Sign in to xmargin as user 7."
    assert parse(text).purpose == "signin"


def test_solana_message_uses_caip122_header_and_chain_reference() -> None:
    key = Keypair()
    message = _evm_message(address=str(key.pubkey()), chain=SOLANA_CHAIN)
    text = render(message)
    lines = text.split("\n")
    assert lines[0] == "app.example:8443 wants you to sign in with your Solana account:"
    assert lines[1] == str(key.pubkey())
    assert lines[7] == "Chain ID: 5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
    assert parse(text) == message
    assert parse(text).family == "solana"


def test_build_truncates_times_to_whole_utc_seconds() -> None:
    message = _evm_message(issued_at=ISSUED + timedelta(microseconds=900_000))
    assert message.issued_at == ISSUED


def test_an_appended_line_is_refused() -> None:
    assert _refusal(EXPECTED_EVM_TEXT + "\n- urn:xmargin:user:8") == ("message", "unexpected_line")


def test_a_trailing_newline_is_an_extra_line() -> None:
    assert _refusal(EXPECTED_EVM_TEXT + "\n") == ("message", "unexpected_line")


def test_a_missing_nonce_line_is_named() -> None:
    lines = [line for line in EXPECTED_EVM_TEXT.split("\n") if not line.startswith("Nonce:")]
    assert _refusal("\n".join(lines)) == ("nonce", "missing")


def test_a_truncated_message_names_the_first_missing_field() -> None:
    lines = EXPECTED_EVM_TEXT.split("\n")[:9]
    assert _refusal("\n".join(lines)) == ("issued_at", "missing")


def test_reordered_lines_are_refused_naming_the_expected_field() -> None:
    lines = EXPECTED_EVM_TEXT.split("\n")
    lines[7], lines[8] = lines[8], lines[7]  # Nonce before Chain ID
    assert _refusal("\n".join(lines)) == ("chain", "out_of_order")


def test_a_not_before_line_is_refused_by_name() -> None:
    lines = EXPECTED_EVM_TEXT.split("\n")
    lines.insert(10, "Not Before: 2026-12-01T12:00:00Z")
    assert _refusal("\n".join(lines)) == ("not_before", "unexpected_line")


def test_crlf_line_endings_are_refused() -> None:
    assert _refusal(EXPECTED_EVM_TEXT.replace("\n", "\r\n")) == ("message", "malformed")


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-12-01 12:00:00Z",
        "2026-12-01T12:00:00+00:00",
        "2026-12-01T12:00:00.5Z",
        "2026-13-01T12:00:00Z",
    ],
)
def test_bad_issued_at_timestamps_are_refused(stamp: str) -> None:
    text = EXPECTED_EVM_TEXT.replace("Issued At: 2026-12-01T12:00:00Z", f"Issued At: {stamp}")
    assert _refusal(text) == ("issued_at", "malformed")


def test_expiration_before_issue_is_refused() -> None:
    text = EXPECTED_EVM_TEXT.replace("12:05:00Z", "11:59:59Z")
    assert _refusal(text) == ("expiration_time", "malformed")


def test_an_address_in_the_wrong_case_is_refused() -> None:
    text = EXPECTED_EVM_TEXT.replace(EVM_ADDRESS, EVM_ADDRESS.lower())
    assert _refusal(text) == ("address", "malformed")


def test_a_missing_statement_is_named() -> None:
    lines = EXPECTED_EVM_TEXT.split("\n")
    del lines[3:5]
    assert _refusal("\n".join(lines)) == ("statement", "missing")


def test_a_resource_for_another_user_is_refused() -> None:
    text = EXPECTED_EVM_TEXT.replace("urn:xmargin:user:7", "urn:xmargin:user:8")
    assert _refusal(text) == ("resources", "malformed")


def test_an_unknown_account_kind_is_refused() -> None:
    text = EXPECTED_EVM_TEXT.replace("Ethereum account", "Bitcoin account")
    assert _refusal(text) == ("message", "malformed")


def test_a_non_numeric_evm_chain_id_is_refused() -> None:
    text = EXPECTED_EVM_TEXT.replace("Chain ID: 42161", "Chain ID: arbitrum")
    assert _refusal(text) == ("chain", "malformed")


def test_a_short_nonce_is_refused() -> None:
    with pytest.raises(AuthError) as caught:
        _evm_message(nonce="abc")
    assert (caught.value.field, caught.value.reason) == ("nonce", "malformed")


def _check(message: SignInMessage, **overrides: object) -> None:
    expected: dict[str, object] = {
        "domain": "app.example:8443",
        "uri": "https://app.example:8443/link",
        "chain": "eip155:42161",
        "user_id": 7,
        "purpose": "link",
        "now": ISSUED + timedelta(minutes=1),
    }
    expected.update(overrides)
    check_message(message, **expected)  # type: ignore[arg-type]


def test_check_accepts_a_message_written_for_this_request() -> None:
    _check(_evm_message())


@pytest.mark.parametrize(
    ("override", "field", "reason"),
    [
        ({"domain": "evil.example"}, "domain", "wrong_domain"),
        ({"uri": "https://evil.example"}, "uri", "wrong_uri"),
        ({"chain": "eip155:1"}, "chain", "wrong_chain"),
        ({"user_id": 8}, "user_id", "wrong_user"),
        ({"purpose": "signin"}, "statement", "wrong_purpose"),
        ({"now": ISSUED + timedelta(minutes=5)}, "expiration_time", "expired"),
        ({"now": ISSUED - timedelta(minutes=2)}, "issued_at", "not_yet_valid"),
    ],
)
def test_check_refuses_a_message_written_for_something_else(
    override: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(AuthError) as caught:
        _check(_evm_message(), **override)
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_an_oversized_message_is_refused_before_parsing() -> None:
    assert _refusal(EXPECTED_EVM_TEXT + "x" * 10_000_000) == ("message", "malformed")
