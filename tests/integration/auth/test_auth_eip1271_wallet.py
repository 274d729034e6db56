"""EIP-1271 on a real anvil: a contract wallet owned by an EOA validates its owner's signature
through `is_valid_signature_1271` at a pinned block, refuses another key's, and the link proof
pipeline accepts it as an `eip1271` proof."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from aggregator.auth.eip1271 import has_code, is_valid_signature_1271, pinned_block
from aggregator.auth.errors import AuthError
from aggregator.auth.evm_signature import personal_sign_digest
from aggregator.auth.proof import ExpectedProof, verify_proof
from aggregator.auth.siwe import build_message, new_nonce, render
from chains.evm.abi import selector
from chains.evm.anvil import DevnetRpc
from chains.evm.devnet import AnvilNode
from chains.evm.trust_devnet import deploy_dev_smart_wallet

CHAIN = "eip155:31337"


@dataclass(frozen=True)
class Wallet:
    url: str
    address: str
    owner: LocalAccount


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def wallet(anvil: AnvilNode) -> Wallet:
    owner = Account.create()
    return Wallet(anvil.url, await deploy_dev_smart_wallet(anvil.url, owner.address), owner)


def _link_text(address: str, now: datetime) -> str:
    return render(
        build_message(
            domain="app.example",
            address=address,
            uri="https://app.example",
            chain=CHAIN,
            nonce=new_nonce(),
            issued_at=now,
            expiration_time=now + timedelta(minutes=5),
            user_id=11,
            purpose="link",
        )
    )


def _sign(account: LocalAccount, text: str) -> bytes:
    return bytes(account.sign_message(encode_defunct(text=text)).signature)


async def test_the_owners_signature_is_valid_and_anothers_is_not(wallet: Wallet) -> None:
    text = _link_text(wallet.address, datetime.now(UTC))
    block = await pinned_block(wallet.url)
    digest = personal_sign_digest(text)
    assert await has_code(wallet.url, wallet.address, block) is True
    assert await is_valid_signature_1271(
        wallet.url, wallet.address, digest, _sign(wallet.owner, text), block
    )
    assert not await is_valid_signature_1271(
        wallet.url, wallet.address, digest, _sign(Account.create(), text), block
    )


async def test_an_eoa_has_no_code_and_a_call_to_it_is_not_valid(wallet: Wallet) -> None:
    block = await pinned_block(wallet.url)
    assert await has_code(wallet.url, wallet.owner.address, block) is False
    assert not await is_valid_signature_1271(
        wallet.url, wallet.owner.address, bytes(32), bytes(65), block
    )


async def test_a_wrong_length_signature_reverts_and_reads_as_invalid(wallet: Wallet) -> None:
    block = await pinned_block(wallet.url)
    assert not await is_valid_signature_1271(
        wallet.url, wallet.address, bytes(32), bytes(70), block
    )


async def test_the_check_reads_the_pinned_block_not_the_latest(anvil: AnvilNode) -> None:
    first, second = Account.create(), Account.create()
    address = await deploy_dev_smart_wallet(anvil.url, first.address)
    text = _link_text(address, datetime.now(UTC))
    digest = personal_sign_digest(text)
    before = await pinned_block(anvil.url)
    async with DevnetRpc(anvil.url) as rpc:
        await rpc.call("anvil_impersonateAccount", [first.address])
        await rpc.call("anvil_setBalance", [first.address, hex(10**18)])
        data = selector("setOwner(address)") + encode(["address"], [second.address])
        await rpc.send(address, data, sender=first.address)
        await rpc.call("anvil_stopImpersonatingAccount", [first.address])
    after = await pinned_block(anvil.url)
    assert after > before
    assert await is_valid_signature_1271(anvil.url, address, digest, _sign(first, text), before)
    assert not await is_valid_signature_1271(anvil.url, address, digest, _sign(first, text), after)
    assert await is_valid_signature_1271(anvil.url, address, digest, _sign(second, text), after)


def _expected() -> ExpectedProof:
    return ExpectedProof(
        domain="app.example", uri="https://app.example", chain=CHAIN, user_id=11, purpose="link"
    )


async def test_verify_proof_accepts_a_contract_wallet_link_at_a_pinned_block(
    wallet: Wallet,
) -> None:
    now = datetime.now(UTC)
    text = _link_text(wallet.address, now)
    signature = "0x" + _sign(wallet.owner, text).hex()
    proof = await verify_proof(text, signature, _expected(), now=now, evm_rpc_url=wallet.url)
    assert proof.method == "eip1271"
    assert proof.block_number is not None and proof.block_number >= 1
    assert proof.message.address == wallet.address


async def test_verify_proof_refuses_a_contract_wallet_link_signed_by_another(
    wallet: Wallet,
) -> None:
    now = datetime.now(UTC)
    text = _link_text(wallet.address, now)
    signature = "0x" + _sign(Account.create(), text).hex()
    with pytest.raises(AuthError) as caught:
        await verify_proof(text, signature, _expected(), now=now, evm_rpc_url=wallet.url)
    assert (caught.value.field, caught.value.reason) == ("signature", "wrong_signer")


async def test_verify_proof_still_accepts_an_eoa_with_a_chain_at_hand(anvil: AnvilNode) -> None:
    now = datetime.now(UTC)
    account = Account.create()
    text = _link_text(account.address, now)
    signature = "0x" + _sign(account, text).hex()
    proof = await verify_proof(text, signature, _expected(), now=now, evm_rpc_url=anvil.url)
    assert proof.method == "eip191"
