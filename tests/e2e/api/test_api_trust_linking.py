"""Linking wallets over real HTTP, only with proof: EVM personal_sign, an EIP-1271 contract wallet
on anvil, Solana ed25519 — and every refusal of the issue answered 4xx naming the field and why,
with nothing linked and the nonce left as it was."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account
from solders.keypair import Keypair

from aggregator.auth.siwe import build_message, new_nonce, render
from chains.evm.trust_devnet import deploy_dev_smart_wallet
from tests.e2e.api.conftest import ALICE
from tests.e2e.api.trust_conftest import (
    CHAIN,
    DOMAIN,
    NONCE_TTL_SECONDS,
    SOLANA_CHAIN,
    URI,
    TrustWorld,
    evm_nonce,
    link_evm,
    sign_evm,
    sign_solana,
)
from tests.e2e.conftest import REPO


async def _wallets(world: TrustWorld, user: str) -> list[tuple[Any, ...]]:
    return await world.sql(
        "SELECT chain, address, ownership_proof, verified_at FROM wallets WHERE user_id = %s "
        "ORDER BY chain, address",
        world.users[user],
    )


async def _nonce_state(world: TrustWorld, nonce: str) -> tuple[Any, ...] | None:
    rows = await world.sql(
        "SELECT user_id, purpose, consumed_at FROM auth_nonces WHERE nonce = %s", nonce
    )
    return rows[0] if rows else None


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


async def _refused_and_nothing_written(
    world: TrustWorld,
    http: httpx.AsyncClient,
    user: str,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    before = await _wallets(world, user)
    response = await http.post(f"/v1/users/{user}/wallets", json=body)
    assert response.status_code == status, response.text
    error = _error(response)
    assert (error["code"], error["field"]) == (code, field), error
    assert error["message"]
    assert await _wallets(world, user) == before


# --- acceptances -------------------------------------------------------------------------------


async def test_an_evm_wallet_links_with_its_personal_sign_and_the_proof_is_stored(
    trust_world: TrustWorld,
) -> None:
    world = trust_world
    await world.add_user("dana")
    account = Account.create()
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "dana", account.address)
        text = issued["message"]
        # The text binds the domain, URI, chain, account, user, nonce and both times.
        lines = text.split("\n")
        assert lines[0] == f"{DOMAIN} wants you to sign in with your Ethereum account:"
        assert lines[1] == account.address
        assert lines[3] == f"Link this account to xmargin user {world.users['dana']}."
        assert f"URI: {URI}" in lines and "Chain ID: 31337" in lines
        assert f"Nonce: {issued['nonce']}" in lines
        assert lines[-1] == f"- urn:xmargin:user:{world.users['dana']}"
        issued_at = datetime.fromisoformat(issued["issued_at"].replace("Z", "+00:00"))
        expires = datetime.fromisoformat(issued["expiration_time"].replace("Z", "+00:00"))
        assert (expires - issued_at).total_seconds() == NONCE_TTL_SECONDS
        assert issued["account"] == f"{CHAIN}:{account.address}"
        signature = sign_evm(account, text)
        response = await http.post(
            "/v1/users/dana/wallets", json={"message": text, "signature": signature}
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["account"] == f"{CHAIN}:{account.address}"
    assert body["method"] == "eip191" and body["block_number"] is None
    assert body["user_id"] == world.users["dana"]
    ((chain, address, proof, verified_at),) = await _wallets(world, "dana")
    assert (chain, address) == ("local", account.address)
    assert verified_at is not None
    assert json.loads(proof) == {
        "method": "eip191",
        "message": text,
        "signature": signature,
        "block_number": None,
    }
    state = await _nonce_state(world, issued["nonce"])
    assert state is not None and state[2] is not None  # consumed by the link


async def test_a_lowercase_address_is_given_back_checksummed_to_sign(
    trust_world: TrustWorld,
) -> None:
    world = trust_world
    await world.add_user("lower")
    account = Account.create()
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "lower", account.address.lower())
    assert issued["message"].split("\n")[1] == account.address


async def test_an_eip1271_contract_wallet_links_through_the_chain_at_a_pinned_block(
    trust_world: TrustWorld,
) -> None:
    world = trust_world
    await world.add_user("safe-owner")
    owner = Account.create()
    wallet = await deploy_dev_smart_wallet(world.node.url, owner.address)
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "safe-owner", wallet)
        text = issued["message"]
        response = await http.post(
            "/v1/users/safe-owner/wallets",
            json={"message": text, "signature": sign_evm(owner, text)},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["method"] == "eip1271"
    assert isinstance(body["block_number"], int) and body["block_number"] >= 1
    ((_, address, proof, _),) = await _wallets(world, "safe-owner")
    assert address == wallet
    assert json.loads(proof)["block_number"] == body["block_number"]


async def test_an_eip1271_wallet_refuses_another_keys_signature(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("safe-victim")
    wallet = await deploy_dev_smart_wallet(world.node.url, Account.create().address)
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "safe-victim", wallet)
        text = issued["message"]
        await _refused_and_nothing_written(
            world,
            http,
            "safe-victim",
            {"message": text, "signature": sign_evm(Account.create(), text)},
            422,
            "wrong_signer",
            "signature",
        )
    state = await _nonce_state(world, issued["nonce"])
    assert state is not None and state[2] is None  # still unused


async def test_a_solana_wallet_links_with_its_ed25519_signature(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("sol-user")
    keypair = Keypair()
    address = str(keypair.pubkey())
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "sol-user", address, chain=SOLANA_CHAIN)
        text = issued["message"]
        assert text.split("\n")[0] == f"{DOMAIN} wants you to sign in with your Solana account:"
        response = await http.post(
            "/v1/users/sol-user/wallets",
            json={"message": text, "signature": sign_solana(keypair, text)},
        )
    assert response.status_code == 201, response.text
    assert response.json()["method"] == "ed25519"
    assert response.json()["account"] == f"{SOLANA_CHAIN}:{address}"
    ((chain, stored, proof, verified_at),) = await _wallets(world, "sol-user")
    assert (chain, stored, json.loads(proof)["method"]) == ("sol", address, "ed25519")
    assert verified_at is not None


async def test_a_solana_signature_by_another_key_is_refused(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("sol-victim")
    address = str(Keypair().pubkey())
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "sol-victim", address, chain=SOLANA_CHAIN)
        text = issued["message"]
        await _refused_and_nothing_written(
            world,
            http,
            "sol-victim",
            {"message": text, "signature": sign_solana(Keypair(), text)},
            422,
            "wrong_signer",
            "signature",
        )


# --- refusals ----------------------------------------------------------------------------------


async def test_a_wrong_signer_is_refused_and_the_nonce_stays_usable(
    trust_world: TrustWorld,
) -> None:
    world = trust_world
    await world.add_user("erin")
    account = Account.create()
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "erin", account.address)
        text = issued["message"]
        await _refused_and_nothing_written(
            world,
            http,
            "erin",
            {"message": text, "signature": sign_evm(Account.create(), text)},
            422,
            "wrong_signer",
            "signature",
        )
        # Nothing was written: the same nonce, signed by the right key, still links.
        response = await http.post(
            "/v1/users/erin/wallets",
            json={"message": text, "signature": sign_evm(account, text)},
        )
    assert response.status_code == 201, response.text


async def test_a_replayed_nonce_is_refused(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("replay")
    account = Account.create()
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "replay", account.address)
        body = {"message": issued["message"], "signature": sign_evm(account, issued["message"])}
        first = await http.post("/v1/users/replay/wallets", json=body)
        assert first.status_code == 201
        await _refused_and_nothing_written(world, http, "replay", body, 422, "used", "nonce")


async def test_another_users_nonce_is_refused(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("owner-of-nonce")
    await world.add_user("thief")
    account = Account.create()
    async with world.client(world.keys["linker"]) as http:
        theirs = await evm_nonce(http, "owner-of-nonce", account.address)
        # A text for the thief, carrying the other user's nonce, signed by the wallet.
        ours = await evm_nonce(http, "thief", account.address)
        text = ours["message"].replace(ours["nonce"], theirs["nonce"])
        await _refused_and_nothing_written(
            world,
            http,
            "thief",
            {"message": text, "signature": sign_evm(account, text)},
            422,
            "other_user",
            "nonce",
        )
        # And the other user's own text, posted for the thief, names another user.
        await _refused_and_nothing_written(
            world,
            http,
            "thief",
            {"message": theirs["message"], "signature": sign_evm(account, theirs["message"])},
            422,
            "wrong_user",
            "user_id",
        )
    state = await _nonce_state(world, theirs["nonce"])
    assert state is not None and state[2] is None


async def test_a_nonce_that_never_existed_is_refused(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("nobody-nonce")
    account = Account.create()
    now = datetime.now(UTC).replace(microsecond=0)
    text = render(
        build_message(
            domain=DOMAIN,
            address=account.address,
            uri=URI,
            chain=CHAIN,
            nonce=new_nonce(),
            issued_at=now,
            expiration_time=now + timedelta(minutes=5),
            user_id=world.users["nobody-nonce"],
            purpose="link",
        )
    )
    async with world.client(world.keys["linker"]) as http:
        await _refused_and_nothing_written(
            world,
            http,
            "nobody-nonce",
            {"message": text, "signature": sign_evm(account, text)},
            422,
            "unknown",
            "nonce",
        )


async def test_an_expired_nonce_is_refused(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("late")
    account = Account.create()
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "late", account.address)
        await asyncio.sleep(NONCE_TTL_SECONDS + 1)
        text = issued["message"]
        await _refused_and_nothing_written(
            world,
            http,
            "late",
            {"message": text, "signature": sign_evm(account, text)},
            422,
            "expired",
            "expiration_time",
        )


@pytest.mark.parametrize(
    ("old", "new", "code", "field"),
    [
        (f"{DOMAIN} wants", "evil.example wants", "wrong_domain", "domain"),
        (f"URI: {URI}", "URI: https://evil.example", "wrong_uri", "uri"),
        ("Chain ID: 31337", "Chain ID: 1", "not_found", "chain"),
    ],
)
async def test_another_domain_uri_or_chain_is_refused(
    trust_world: TrustWorld, old: str, new: str, code: str, field: str
) -> None:
    world = trust_world
    name = f"elsewhere-{code}"
    await world.add_user(name)
    account = Account.create()
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, name, account.address)
        text = issued["message"].replace(old, new)
        assert text != issued["message"]
        status = 404 if code == "not_found" else 422
        await _refused_and_nothing_written(
            world,
            http,
            name,
            {"message": text, "signature": sign_evm(account, text)},
            status,
            code,
            field,
        )


async def test_a_nonce_issued_for_another_configured_chain_is_refused(
    trust_world: TrustWorld,
) -> None:
    world = trust_world
    await world.add_user("cross-chain")
    account = Account.create()
    keypair = Keypair()
    async with world.client(world.keys["linker"]) as http:
        solana = await evm_nonce(http, "cross-chain", str(keypair.pubkey()), chain=SOLANA_CHAIN)
        evm = await evm_nonce(http, "cross-chain", account.address)
        # The EVM text carrying the nonce issued for the Solana chain and account.
        text = evm["message"].replace(evm["nonce"], solana["nonce"])
        await _refused_and_nothing_written(
            world,
            http,
            "cross-chain",
            {"message": text, "signature": sign_evm(account, text)},
            422,
            "mismatch",
            "nonce",
        )


def _malformed_cases(text: str) -> list[tuple[str, str, str, str]]:
    lines = text.split("\n")
    return [
        ("extra line", text + "\nRequest ID: 42", "unexpected_line", "message"),
        (
            "a not-before line",
            "\n".join([*lines[:11], "Not Before: 2026-01-01T00:00:00Z", *lines[11:]]),
            "unexpected_line",
            "not_before",
        ),
        ("missing nonce line", "\n".join(lines[:8] + lines[9:]), "missing", "nonce"),
        ("missing statement", "\n".join(lines[:3] + lines[5:]), "missing", "statement"),
        (
            "shuffled lines",
            "\n".join([*lines[:5], lines[6], lines[5], *lines[7:]]),
            "out_of_order",
            "uri",
        ),
        ("CRLF", text.replace("\n", "\r\n"), "malformed", "message"),
        ("not a message", "hello", "malformed", "message"),
        ("lowercase address", text.replace(lines[1], lines[1].lower()), "malformed", "address"),
        ("trailing newline", text + "\n", "unexpected_line", "message"),
    ]


async def test_malformed_messages_are_refused_naming_the_line(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("mangled")
    account = Account.create()
    # One case lowercases the address: with a checksum that has no capital letter (about 1
    # draw in 2,000) that would be the genuine text, so draw until it has one.
    while account.address[2:].lower() == account.address[2:]:
        account = Account.create()
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, "mangled", account.address)
        for label, text, code, field in _malformed_cases(issued["message"]):
            before = await _wallets(world, "mangled")
            response = await http.post(
                "/v1/users/mangled/wallets",
                json={"message": text, "signature": sign_evm(account, text)},
            )
            assert response.status_code == 422, (label, response.text)
            error = _error(response)
            assert (error["code"], error["field"]) == (code, field), (label, error)
            assert await _wallets(world, "mangled") == before
        # None of them used the nonce: the genuine text still links.
        text = issued["message"]
        response = await http.post(
            "/v1/users/mangled/wallets",
            json={"message": text, "signature": sign_evm(account, text)},
        )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        ("0x" + "ab" * 64, "malformed"),  # 64 bytes
        ("0x" + "ab" * 66, "malformed"),  # 66 bytes
        ("ab" * 65, "malformed"),  # no 0x
        ("0x" + "zz" * 65, "malformed"),  # not hex
        ("0x" + "00" * 65, "bad_signature"),  # recovers no key
        ("0x" + "ab" * 5000, "invalid"),  # over the 10,000-character field limit
    ],
)
async def test_evm_signatures_of_the_wrong_length_or_encoding_are_refused(
    trust_world: TrustWorld, signature: str, code: str
) -> None:
    world = trust_world
    name = f"badsig-{len(signature)}-{code}-{signature[:4]}"
    await world.add_user(name)
    account = Account.create()
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, name, account.address)
        await _refused_and_nothing_written(
            world,
            http,
            name,
            {"message": issued["message"], "signature": signature},
            422,
            code,
            "signature",
        )


@pytest.mark.parametrize(
    "signature",
    ["0x" + "ab" * 64, "1" * 40, "O0Il" * 22, str(Keypair().pubkey())],  # hex, short, bad b58
)
async def test_solana_signatures_of_the_wrong_length_or_encoding_are_refused(
    trust_world: TrustWorld, signature: str
) -> None:
    world = trust_world
    name = f"sol-badsig-{signature[:6]}"
    await world.add_user(name)
    async with world.client(world.keys["linker"]) as http:
        issued = await evm_nonce(http, name, str(Keypair().pubkey()), chain=SOLANA_CHAIN)
        await _refused_and_nothing_written(
            world,
            http,
            name,
            {"message": issued["message"], "signature": signature},
            422,
            "malformed",
            "signature",
        )


async def test_a_wallet_linked_to_another_user_is_a_409(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("latecomer")
    async with world.client(world.keys["linker"]) as http:
        # ALICE is linked to alice; even with a valid-looking flow the link is refused.
        account = Account.create()
        first = await link_evm(http, "latecomer", account)
        assert first.status_code == 201
        await world.add_user("grabber")
        issued = await evm_nonce(http, "grabber", account.address)
        text = issued["message"]
        await _refused_and_nothing_written(
            world,
            http,
            "grabber",
            {"message": text, "signature": sign_evm(account, text)},
            409,
            "wallet_taken",
            "address",
        )
    state = await _nonce_state(world, issued["nonce"])
    assert state is not None and state[2] is None  # rolled back with the link
    owner = await world.sql("SELECT user_id FROM wallets WHERE address = %s", account.address)
    assert owner == [(world.users["latecomer"],)]
    alice = await world.sql("SELECT user_id FROM wallets WHERE address = %s", ALICE)
    assert alice == [(world.users["alice"],)]


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ("0x80b98E6B4525053B07767F63563a2c807B2f2BCe", "address"),  # mixed case, bad checksum
        ("0x1234", "address"),
        ("not-an-address", "address"),
    ],
)
async def test_a_nonce_for_an_address_in_the_wrong_case_or_shape_is_refused(
    trust_world: TrustWorld, address: str, field: str
) -> None:
    world = trust_world
    async with world.client(world.keys["linker"]) as http:
        response = await http.post(
            "/v1/users/carol/wallets/nonce", json={"chain": CHAIN, "address": address}
        )
    assert response.status_code == 422, response.text
    assert _error(response)["field"] == field
    rows = await world.sql(
        "SELECT count(*) FROM auth_nonces WHERE user_id = %s", world.users["carol"]
    )
    assert rows == [(0,)]


async def test_a_ten_megabyte_body_is_refused_with_413_and_nothing_written(
    trust_world: TrustWorld,
) -> None:
    world = trust_world
    before = await world.sql("SELECT count(*) FROM wallets")
    body = json.dumps({"message": "x" * (10 << 20), "signature": "0x00"})
    async with world.client(world.keys["linker"]) as http:
        response = await http.post(
            "/v1/users/carol/wallets",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert _error(response) == {
        "code": "too_large",
        "message": _error(response)["message"],
        "field": "body",
    }
    assert await world.sql("SELECT count(*) FROM wallets") == before


async def test_unknown_users_and_chains_are_404_and_non_proof_chains_422(
    trust_world: TrustWorld,
) -> None:
    world = trust_world
    async with world.client(world.keys["linker"]) as http:
        unknown_user = await http.post(
            "/v1/users/nobody-at-all/wallets/nonce", json={"chain": CHAIN, "address": ALICE}
        )
        unknown_chain = await http.post(
            "/v1/users/carol/wallets/nonce", json={"chain": "eip155:999", "address": ALICE}
        )
        bad_chain = await http.post(
            "/v1/users/carol/wallets/nonce", json={"chain": "not a chain", "address": ALICE}
        )
    assert (unknown_user.status_code, _error(unknown_user)["field"]) == (404, "user")
    assert (unknown_chain.status_code, _error(unknown_chain)["field"]) == (404, "chain")
    assert (bad_chain.status_code, _error(bad_chain)["field"]) == (422, "chain")


async def test_the_operator_cli_links_with_the_operator_proof(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("by-operator")
    account = Account.create()
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "aggregator.cli",
            "wallets",
            "link",
            "by-operator",
            "local",
            account.address.lower(),
            "--config",
            str(world.config_path),
        ],
        env={**os.environ, "XMARGIN_DATABASE_URL": world.database_url},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ((chain, address, proof, verified_at),) = await _wallets(world, "by-operator")
    assert (chain, address) == ("local", account.address)
    assert json.loads(proof) == {"method": "operator"}
    assert verified_at is not None
