"""Ownership signatures: EIP-191 personal_sign for EVM accounts, ed25519 for Solana, and the
`verify_proof` pipeline over both (contract wallets: tests/integration/auth)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from solders.keypair import Keypair

from aggregator.auth.errors import AuthError
from aggregator.auth.evm_signature import (
    decode_hex_signature,
    personal_sign_digest,
    recover_signer,
    verify_eoa_signature,
)
from aggregator.auth.proof import ExpectedProof, verify_proof
from aggregator.auth.siwe import build_message, render
from aggregator.auth.solana_signature import decode_solana_signature, verify_ed25519

TEXT = "xmargin proves this wallet"
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
SOLANA_CHAIN = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"


def _reason(call: object, *args: object) -> tuple[str, str]:
    with pytest.raises(AuthError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.field, caught.value.reason


def _personal_sign(account: LocalAccount, text: str) -> bytes:
    return bytes(account.sign_message(encode_defunct(text=text)).signature)


def test_personal_sign_recovers_to_the_signer() -> None:
    account = Account.create()
    signature = _personal_sign(account, TEXT)
    assert len(signature) == 65
    assert recover_signer(TEXT, signature) == account.address
    verify_eoa_signature(TEXT, account.address, signature)


def test_personal_sign_digest_is_eth_accounts_eip191_hash() -> None:
    account = Account.create()
    signed = account.sign_message(encode_defunct(text=TEXT))
    assert personal_sign_digest(TEXT) == bytes(signed.message_hash)


def test_another_accounts_signature_is_wrong_signer() -> None:
    signature = _personal_sign(Account.create(), TEXT)
    other = Account.create().address
    assert _reason(verify_eoa_signature, TEXT, other, signature) == ("signature", "wrong_signer")


def test_a_signature_over_other_text_is_wrong_signer() -> None:
    account = Account.create()
    signature = _personal_sign(account, TEXT + ".")
    assert _reason(verify_eoa_signature, TEXT, account.address, signature) == (
        "signature",
        "wrong_signer",
    )


@pytest.mark.parametrize(
    "text",
    ["", "0x", "ab" * 65, "0x" + "ab" * 64, "0x" + "ab" * 66, "0x" + "zz" * 65, "0x" + "a" * 129],
)
def test_wrong_length_or_encoding_names_the_signature(text: str) -> None:
    assert _reason(decode_hex_signature, text) == ("signature", "malformed")


def test_a_signature_with_v_out_of_range_recovers_nothing() -> None:
    signature = bytearray(_personal_sign(Account.create(), TEXT))
    signature[64] = 29
    assert _reason(recover_signer, TEXT, bytes(signature)) == ("signature", "bad_signature")


def test_ed25519_signature_of_the_utf8_text_verifies() -> None:
    key = Keypair()
    signature = key.sign_message(TEXT.encode("utf-8"))
    decoded = decode_solana_signature(str(signature))
    verify_ed25519(TEXT, str(key.pubkey()), decoded)


def test_another_keys_ed25519_signature_is_wrong_signer() -> None:
    signature = Keypair().sign_message(TEXT.encode())
    other = str(Keypair().pubkey())
    assert _reason(verify_ed25519, TEXT, other, signature) == ("signature", "wrong_signer")


@pytest.mark.parametrize("text", ["", "0OIl" * 20, "1" * 10, "3" * 100, "0x" + "ab" * 64])
def test_solana_signature_of_wrong_length_or_alphabet_is_malformed(text: str) -> None:
    assert _reason(decode_solana_signature, text) == ("signature", "malformed")


def _expected(chain: str) -> ExpectedProof:
    return ExpectedProof(
        domain="app.example", uri="https://app.example", chain=chain, user_id=3, purpose="link"
    )


def _text(address: str, chain: str) -> str:
    return render(
        build_message(
            domain="app.example",
            address=address,
            uri="https://app.example",
            chain=chain,
            nonce="abcdef0123456789",
            issued_at=NOW,
            expiration_time=NOW + timedelta(minutes=5),
            user_id=3,
            purpose="link",
        )
    )


async def test_verify_proof_accepts_an_eoa_link_and_records_the_proof() -> None:
    account = Account.create()
    text = _text(account.address, "eip155:1")
    signature = "0x" + _personal_sign(account, text).hex()
    proof = await verify_proof(text, signature, _expected("eip155:1"), now=NOW)
    assert proof.method == "eip191"
    assert proof.message.address == account.address
    assert proof.block_number is None
    assert '"method":"eip191"' in proof.record()


async def test_verify_proof_refuses_an_eoa_link_signed_by_another_key() -> None:
    account = Account.create()
    text = _text(account.address, "eip155:1")
    signature = "0x" + _personal_sign(Account.create(), text).hex()
    with pytest.raises(AuthError) as caught:
        await verify_proof(text, signature, _expected("eip155:1"), now=NOW)
    assert (caught.value.field, caught.value.reason) == ("signature", "wrong_signer")


async def test_verify_proof_refuses_a_64_byte_evm_signature_without_a_chain() -> None:
    account = Account.create()
    text = _text(account.address, "eip155:1")
    signature = "0x" + _personal_sign(account, text)[:64].hex()
    with pytest.raises(AuthError) as caught:
        await verify_proof(text, signature, _expected("eip155:1"), now=NOW)
    assert (caught.value.field, caught.value.reason) == ("signature", "malformed")


async def test_verify_proof_accepts_a_solana_link_signed_with_ed25519() -> None:
    key = Keypair()
    text = _text(str(key.pubkey()), SOLANA_CHAIN)
    signature = str(key.sign_message(text.encode("utf-8")))
    proof = await verify_proof(text, signature, _expected(SOLANA_CHAIN), now=NOW)
    assert proof.method == "ed25519"
    assert proof.message.account == f"{SOLANA_CHAIN}:{key.pubkey()}"


async def test_verify_proof_refuses_an_expired_text_before_any_signature_work() -> None:
    key = Keypair()
    text = _text(str(key.pubkey()), SOLANA_CHAIN)
    with pytest.raises(AuthError) as caught:
        await verify_proof(
            text, "not-checked", _expected(SOLANA_CHAIN), now=NOW + timedelta(minutes=5)
        )
    assert (caught.value.field, caught.value.reason) == ("expiration_time", "expired")


async def test_verify_proof_refuses_a_text_for_another_chain() -> None:
    account = Account.create()
    text = _text(account.address, "eip155:1")
    signature = "0x" + _personal_sign(account, text).hex()
    with pytest.raises(AuthError) as caught:
        await verify_proof(text, signature, _expected("eip155:10"), now=NOW)
    assert (caught.value.field, caught.value.reason) == ("chain", "wrong_chain")


def test_a_10_mb_signature_is_malformed() -> None:
    huge = "0x" + "ab" * 5_000_000
    assert _reason(lambda: decode_hex_signature(huge, length=None)) == (
        "signature",
        "malformed",
    )
