"""The text a wallet signs to prove it is controlled by whoever asks to link it or sign in.

EVM accounts get an EIP-4361 (Sign-In with Ethereum) message, Solana accounts the same layout in
its CAIP-122 form (`... with your Solana account:`). The service writes the text and the wallet
signs it unchanged, so `parse` accepts exactly what `render` produces and nothing else: every
line in its place, timestamps as `YYYY-MM-DDTHH:MM:SSZ`, EVM addresses EIP-55 checksummed,
Solana keys canonical base58, no line the service never writes (`Not Before`, `Request ID`).

The text binds the domain and URI of the service, the chain (CAIP-2) and account, the purpose
(`link` or `signin`, in the statement), the xmargin user id (in the statement and as the single
resource `urn:xmargin:user:<id>`), a single-use nonce, issued-at and expiration:

    app.example wants you to sign in with your Ethereum account:
    0xAbC...

    Link this account to xmargin user 7.

    URI: https://app.example
    Version: 1
    Chain ID: 1
    Nonce: 3f9c...
    Issued At: 2026-12-01T12:00:00Z
    Expiration Time: 2026-12-01T12:05:00Z
    Resources:
    - urn:xmargin:user:7
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from aggregator.addresses import AddressError, normalize_address
from aggregator.auth.errors import AuthError

Purpose = Literal["link", "signin"]
PURPOSES: tuple[Purpose, ...] = ("link", "signin")
VERSION = "1"
USER_URN_PREFIX = "urn:xmargin:user:"

# CAIP-2 namespace -> (the word in the header, the address family).
_NAMESPACES = {"eip155": ("Ethereum", "evm"), "solana": ("Solana", "solana")}
_HEADER = re.compile(r"^(?P<domain>\S+) wants you to sign in with your (?P<word>\w+) account:$")
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s]+$")
_NONCE = re.compile(r"^[A-Za-z0-9]{8,64}$")
_EVM_CHAIN_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_CAIP2_REFERENCE = re.compile(r"^[-_a-zA-Z0-9]{1,32}$")
_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
_STATEMENTS: dict[Purpose, str] = {
    "link": "Link this account to xmargin user {user_id}.",
    "signin": "Sign in to xmargin as user {user_id}.",
}
_STATEMENT = re.compile(
    r"^(?:Link this account to xmargin user (?P<link>[1-9][0-9]{0,18})\."
    r"|Sign in to xmargin as user (?P<signin>[1-9][0-9]{0,18})\.)$"
)
# The labelled lines in their order, by the dataclass field each one fills.
_LABELS: tuple[tuple[str, str], ...] = (
    ("uri", "URI: "),
    ("version", "Version: "),
    ("chain", "Chain ID: "),
    ("nonce", "Nonce: "),
    ("issued_at", "Issued At: "),
    ("expiration_time", "Expiration Time: "),
    ("resources", "Resources:"),
)
# EIP-4361 lines this service never writes: present, they are refused by name.
_FOREIGN_LABELS = {"Not Before: ": "not_before", "Request ID: ": "request_id"}
_LINE_COUNT = 5 + len(_LABELS) + 1
MAX_MESSAGE_CHARS = 2048  # the longest text render writes is well under 1 KB


@dataclass(frozen=True, slots=True)
class SignInMessage:
    """The fields of a link or sign-in message. Times are aware UTC datetimes, whole seconds."""

    domain: str
    address: str
    uri: str
    chain: str  # CAIP-2: eip155:1, solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp
    nonce: str
    issued_at: datetime
    expiration_time: datetime
    user_id: int
    purpose: Purpose
    version: str = VERSION

    @property
    def namespace(self) -> str:
        return self.chain.partition(":")[0]

    @property
    def chain_reference(self) -> str:
        return self.chain.partition(":")[2]

    @property
    def family(self) -> str:
        """`evm` or `solana`."""
        return _NAMESPACES[self.namespace][1]

    @property
    def account(self) -> str:
        """The CAIP-10 account id."""
        return f"{self.chain}:{self.address}"

    @property
    def statement(self) -> str:
        return _STATEMENTS[self.purpose].format(user_id=self.user_id)

    @property
    def resources(self) -> tuple[str, ...]:
        return (user_urn(self.user_id),)


def user_urn(user_id: int) -> str:
    """`urn:xmargin:user:<id>`: how signed texts (and attestations) name an xmargin user."""
    return f"{USER_URN_PREFIX}{user_id}"


def new_nonce() -> str:
    """A fresh random nonce: 32 hex characters (128 bits), alphanumeric as EIP-4361 asks."""
    return secrets.token_hex(16)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, as the signed text writes it.

    May raise: ValueError (a naive datetime).
    """
    if moment.tzinfo is None:
        raise ValueError("timestamps in a signed message must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain: str,
    nonce: str,
    issued_at: datetime,
    expiration_time: datetime,
    user_id: int,
    purpose: Purpose,
) -> SignInMessage:
    """A message from its fields, each checked as `parse` would check it (times truncated to
    whole seconds in UTC).

    May raise: AuthError (the field that is not valid).
    """
    message = SignInMessage(
        domain=domain,
        address=address,
        uri=uri,
        chain=chain,
        nonce=nonce,
        issued_at=_whole_seconds(issued_at, "issued_at"),
        expiration_time=_whole_seconds(expiration_time, "expiration_time"),
        user_id=user_id,
        purpose=purpose,
    )
    _validate(message)
    return message


def render(message: SignInMessage) -> str:
    """The exact text to sign (lines joined by LF, no trailing newline).

    May raise: AuthError (a field that is not valid).
    """
    _validate(message)
    word = _NAMESPACES[message.namespace][0]
    return "\n".join(
        [
            f"{message.domain} wants you to sign in with your {word} account:",
            message.address,
            "",
            message.statement,
            "",
            f"URI: {message.uri}",
            f"Version: {message.version}",
            f"Chain ID: {message.chain_reference}",
            f"Nonce: {message.nonce}",
            f"Issued At: {format_timestamp(message.issued_at)}",
            f"Expiration Time: {format_timestamp(message.expiration_time)}",
            "Resources:",
            *(f"- {resource}" for resource in message.resources),
        ]
    )


def parse(text: str) -> SignInMessage:
    """The message a signed text carries, refusing anything `render` would not have written.

    May raise: AuthError (`field` names the line at fault; `reason` is `malformed`, `missing`,
    `out_of_order` or `unexpected_line`).
    """
    if len(text) > MAX_MESSAGE_CHARS:
        raise AuthError(
            "message", "malformed", f"the message is over {MAX_MESSAGE_CHARS} characters"
        )
    if "\r" in text:
        raise AuthError("message", "malformed", "the message must use LF line endings only")
    lines = text.split("\n")
    header = _HEADER.match(lines[0])
    if header is None:
        raise AuthError(
            "message",
            "malformed",
            "the first line must be '<domain> wants you to sign in with "
            "your Ethereum account:' (or Solana)",
        )
    namespace = next((ns for ns, (w, _) in _NAMESPACES.items() if w == header["word"]), None)
    if namespace is None:
        raise AuthError("message", "malformed", f"unsupported account kind {header['word']!r}")
    if len(lines) < 2 or not lines[1]:
        raise AuthError("address", "missing", "the second line must be the account address")
    _expect_blank(lines, 2, "statement")
    if len(lines) < 4 or lines[3].startswith("URI: "):
        raise AuthError("statement", "missing", "the statement line is missing")
    statement = _STATEMENT.match(lines[3])
    if statement is None:
        raise AuthError(
            "statement", "malformed", "the statement must name the purpose and the xmargin user"
        )
    purpose: Purpose = "link" if statement["link"] else "signin"
    statement_user = int(statement["link"] or statement["signin"])
    _expect_blank(lines, 4, "uri")
    values = _labelled_values(lines)
    resource = _resource(lines)
    if resource != user_urn(statement_user):
        raise AuthError(
            "resources", "malformed", "the resource must be the user the statement names"
        )
    chain = f"{namespace}:{values['chain']}"
    if namespace == "eip155" and not _EVM_CHAIN_ID.match(values["chain"]):
        raise AuthError("chain", "malformed", "Chain ID must be an EIP-155 chain id")
    message = SignInMessage(
        domain=header["domain"],
        address=lines[1],
        uri=values["uri"],
        chain=chain,
        nonce=values["nonce"],
        issued_at=_parse_timestamp(values["issued_at"], "issued_at"),
        expiration_time=_parse_timestamp(values["expiration_time"], "expiration_time"),
        user_id=statement_user,
        purpose=purpose,
        version=values["version"],
    )
    _validate(message)
    if render(message) != text:  # every field was checked; this only guards the layout
        raise AuthError("message", "malformed", "the message is not in canonical form")
    return message


def check_message(
    message: SignInMessage,
    *,
    domain: str,
    uri: str,
    chain: str,
    user_id: int,
    purpose: Purpose,
    now: datetime,
    clock_skew_seconds: int = 60,
) -> None:
    """Refuse a well-formed message that was not written for this request: another domain,
    URI, chain, user or purpose, expired at `now`, or issued in the future (beyond the skew).

    May raise: AuthError (`wrong_domain`, `wrong_uri`, `wrong_chain`, `wrong_user`,
    `wrong_purpose`, `expired`, `not_yet_valid`).
    """
    for field, got, want in (
        ("domain", message.domain, domain),
        ("uri", message.uri, uri),
        ("chain", message.chain, chain),
    ):
        if got != want:
            raise AuthError(field, f"wrong_{field}", f"the message names {field} {got!r}")
    if message.user_id != user_id:
        raise AuthError("user_id", "wrong_user", "the message names another user")
    if message.purpose != purpose:
        raise AuthError(
            "statement", "wrong_purpose", f"the message is for {message.purpose}, not {purpose}"
        )
    if now >= message.expiration_time:
        raise AuthError("expiration_time", "expired", "the message has expired")
    if (message.issued_at - now).total_seconds() > clock_skew_seconds:
        raise AuthError("issued_at", "not_yet_valid", "the message is issued in the future")


def _expect_blank(lines: list[str], index: int, next_field: str) -> None:
    if len(lines) <= index:
        raise AuthError(next_field, "missing", f"the message ends before {next_field}")
    if lines[index] != "":
        raise AuthError("message", "malformed", f"line {index + 1} must be empty")


def _labelled_values(lines: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for offset, (field, label) in enumerate(_LABELS):
        index = 5 + offset
        if index >= len(lines):
            raise AuthError(field, "missing", f"the {label.strip(': ')} line is missing")
        line = lines[index]
        matches = line == label if field == "resources" else line.startswith(label)
        if matches:
            values[field] = line[len(label) :]
            continue
        for foreign, name in _FOREIGN_LABELS.items():
            if line.startswith(foreign):
                raise AuthError(name, "unexpected_line", f"this service never asks for {name}")
        # Present further on: the lines are shuffled; absent: it is missing.
        if any(other.startswith(label.rstrip()) for other in lines[index + 1 :]):
            raise AuthError(field, "out_of_order", f"expected the {label.strip(': ')} line here")
        raise AuthError(field, "missing", f"expected the {label.strip(': ')} line here")
    return values


def _resource(lines: list[str]) -> str:
    index = 5 + len(_LABELS)
    if index >= len(lines):
        raise AuthError("resources", "missing", "the user resource line is missing")
    if len(lines) > _LINE_COUNT:
        raise AuthError("message", "unexpected_line", "the message has lines after its end")
    line = lines[index]
    if not line.startswith("- "):
        raise AuthError("resources", "malformed", "a resource line is '- <uri>'")
    return line[2:]


def _parse_timestamp(text: str, field: str) -> datetime:
    if not _TIMESTAMP.match(text):
        raise AuthError(field, "malformed", f"{field} must be RFC 3339 UTC: YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise AuthError(field, "malformed", f"{field} is not a real date and time") from None


def _whole_seconds(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        raise AuthError(field, "malformed", f"{field} must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


def _validate(message: SignInMessage) -> None:
    if not _DOMAIN.match(message.domain):
        raise AuthError("domain", "malformed", "domain must be a host with an optional port")
    if not _URI.match(message.uri):
        raise AuthError("uri", "malformed", "uri must be an absolute URI")
    if message.version != VERSION:
        raise AuthError("version", "malformed", f"version must be {VERSION}")
    namespace, _, reference = message.chain.partition(":")
    if namespace not in _NAMESPACES or not _CAIP2_REFERENCE.match(reference):
        raise AuthError("chain", "malformed", "chain must be a CAIP-2 id (eip155:… or solana:…)")
    if namespace == "eip155" and not _EVM_CHAIN_ID.match(reference):
        raise AuthError("chain", "malformed", "an eip155 chain reference is a decimal chain id")
    try:
        canonical = normalize_address(_NAMESPACES[namespace][1], message.address)
    except AddressError as exc:
        raise AuthError("address", "malformed", str(exc)) from None
    if canonical != message.address:
        raise AuthError("address", "malformed", "the address is not in canonical form")
    if not _NONCE.match(message.nonce):
        raise AuthError("nonce", "malformed", "nonce must be 8 to 64 letters or digits")
    for field in ("issued_at", "expiration_time"):
        moment: datetime = getattr(message, field)
        if moment.tzinfo is None or moment.utcoffset() or moment.microsecond:
            raise AuthError(field, "malformed", f"{field} must be UTC, whole seconds")
    if message.expiration_time <= message.issued_at:
        raise AuthError("expiration_time", "malformed", "expiration_time must follow issued_at")
    if message.purpose not in PURPOSES:
        raise AuthError("statement", "malformed", "purpose must be link or signin")
    if not 0 < message.user_id < 2**63:
        raise AuthError("user_id", "malformed", "user id must be a positive 64-bit integer")
