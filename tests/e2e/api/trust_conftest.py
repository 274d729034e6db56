"""The trust world: `xmargin api` in its own process with user and reference reads needing a
key or a session (a fresh install's default), a session key and an attestation signing key in
its environment, over a real Postgres database of its own and statuses published from a real
anvil chain. A second anvil (chain id ATTESTATION_CHAIN_ID) carries `MarginAttestationVerifier`,
deployed first on a fresh node by anvil's account 0, allowlisting the service key.

The config also names a Solana chain (never polled: linking and signing in only need its CAIP-2
id) so Solana wallets can be linked; a user whose only wallet is there publishes a stale status.

Built once per package by the `trust_world` fixture (tests/e2e/api/conftest.py). Keys, wallets
and users are made here or in the tests (eth_account, solders).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from solders.keypair import Keypair

from aggregator.auth.api_keys import Scope
from aggregator.config import LoadedConfig, load_config
from aggregator.polling import poll_chain, wallet_owners
from aggregator.publish import publish
from aggregator.specs import chain_spec
from aggregator.store.accounts import auth as auth_repo
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from chains.evm.trust_devnet import deploy_attestation_verifier
from chains.registry import build_adapter
from tests.e2e.api.conftest import ALICE, BOB, ETH, USDC, stop_api
from tests.e2e.conftest import REPO, write_config

DOMAIN = "app.example"
URI = "https://app.example"
CHAIN = "eip155:31337"
ATTESTATION_CHAIN_ID = 31990
NONCE_TTL_SECONDS = 8
SESSION_TTL_SECONDS = 900
ATTESTATION_TTL_SECONDS = 300
BURST_RATE = 20  # per minute: a burst of 20, then one request every 3 s
SOLANA_GENESIS = str(Keypair.from_seed(bytes(range(32))).pubkey())
SOLANA_CHAIN = f"solana:{SOLANA_GENESIS[:32]}"
# grace holds her key: she signs in. Anvil's well-known account 2 (funded, never used here).
GRACE = Account.from_key("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
KEYS: dict[str, tuple[Scope, int | None]] = {
    "reader": ("read", None),
    "linker": ("link", None),
    "admin": ("admin", None),
    "burst": ("read", BURST_RATE),
    "doomed": ("read", None),
}
SOLANA_TABLE = f"""
[chains.sol]
family = "solana"
genesis_hash = "{SOLANA_GENESIS}"
rpc_urls = ["http://127.0.0.1:9"]
max_staleness_seconds = 3600
timeout_seconds = 1
retries = 0
"""


def trust_settings(verifier: str | None, signer: str) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "domain": DOMAIN,
        "uri": URI,
        "nonce_ttl_seconds": NONCE_TTL_SECONDS,
        "session_ttl_seconds": SESSION_TTL_SECONDS,
        "attestation_ttl_seconds": ATTESTATION_TTL_SECONDS,
        "signers": [signer],
        "rate_per_minute": 600,
        "require": {"ops": "open", "reference": "auth", "user": "auth"},
    }
    if verifier is not None:
        settings["attestation_chain_id"] = ATTESTATION_CHAIN_ID
        settings["attestation_verifying_contract"] = verifier
    return settings


def write_trust_config(directory: Path, rpc_url: str, verifier: str | None, signer: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = write_config(
        directory,
        {"local": [rpc_url]},
        max_staleness_seconds=3600,
        auth=trust_settings(verifier, signer),
    )
    path.write_text(path.read_text(encoding="utf-8") + SOLANA_TABLE, encoding="utf-8")
    return path


def start_trust_api(
    config_path: Path, database_url: str, env: dict[str, str], output: list[str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """`xmargin api --port 0` with the trust secrets in its environment; process, base URL.
    Everything it prints is appended to `output`."""
    output = [] if output is None else output
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregator.cli",
            "api",
            "--port",
            "0",
            "--config",
            str(config_path),
        ],
        env={**os.environ, "XMARGIN_DATABASE_URL": database_url, **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = output
    for _ in range(200):
        line = process.stdout.readline()
        seen.append(line)
        if not line and process.poll() is not None:
            break
        found = re.search(r"xmargin api at (http://\S+)", line)
        if found:
            # Keep reading its output so a chatty server never blocks on a full pipe.
            threading.Thread(target=_drain, args=(process, output), daemon=True).start()
            return process, found.group(1)
    process.kill()
    raise RuntimeError(f"xmargin api did not start: {''.join(seen)}")


def _drain(process: subprocess.Popen[str], output: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)


@dataclass
class TrustWorld:
    base_url: str
    database_url: str
    config_path: Path
    config: LoadedConfig
    node: AnvilNode
    verifier_node: AnvilNode
    deployment: EvmDeployment
    verifier: str
    users: dict[str, int]
    keys: dict[str, str]
    session_secret: bytes = field(repr=False)
    signing_key: bytes = field(repr=False)
    env: dict[str, str] = field(repr=False)
    output: list[str] = field(default_factory=list)

    def client(self, credential: str | None = None) -> httpx.AsyncClient:
        headers = {} if credential is None else {"Authorization": f"Bearer {credential}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=20)

    async def republish(self) -> None:
        """Mine, poll the EVM chain for every linked wallet, publish every user."""
        await mine(self.node.url, 3)
        await poll_and_publish(self.database_url, self.config)

    async def add_user(self, name: str) -> int:
        database = Database(self.database_url)
        try:
            async with database.session() as session:
                user_id = await add_user(session, name)
        finally:
            await database.dispose()
        self.users[name] = user_id
        return user_id

    async def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of one read-only query on the world's database (what the API wrote)."""
        import psycopg

        from aggregator.store.database import libpq_url

        def run() -> list[tuple[Any, ...]]:
            with psycopg.connect(libpq_url(self.database_url)) as conn:
                return list(conn.execute(query, args).fetchall())

        return await asyncio.to_thread(run)


async def poll_and_publish(database_url: str, config: LoadedConfig) -> None:
    database = Database(database_url)
    adapter = build_adapter(chain_spec(config, "local"))
    try:
        owners = await wallet_owners(database)
        result = await poll_chain(database, adapter, owners.get("local", {}))
        assert result.ok, result.describe()
        await publish(database, config)
    finally:
        await adapter.aclose()
        await database.dispose()


def sign_evm(account: LocalAccount, text: str) -> str:
    """personal_sign (EIP-191) of `text` by `account`, 0x-hex."""
    return "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()


def sign_solana(keypair: Keypair, text: str) -> str:
    """ed25519 signature of the UTF-8 `text` by `keypair`, base58 (what signMessage gives)."""
    return str(keypair.sign_message(text.encode("utf-8")))


async def evm_nonce(
    http: httpx.AsyncClient, user: str, address: str, chain: str = CHAIN
) -> dict[str, Any]:
    response = await http.post(
        f"/v1/users/{user}/wallets/nonce", json={"chain": chain, "address": address}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def link_evm(http: httpx.AsyncClient, user: str, account: LocalAccount) -> httpx.Response:
    """Ask for a nonce, sign the text with `account`, link: the whole flow a front end runs."""
    issued = await evm_nonce(http, user, account.address)
    return await http.post(
        f"/v1/users/{user}/wallets",
        json={"message": issued["message"], "signature": sign_evm(account, issued["message"])},
    )


async def sign_in_evm(http: httpx.AsyncClient, user: str, account: LocalAccount) -> httpx.Response:
    issued = await http.post(
        "/v1/auth/nonce", json={"user": user, "chain": CHAIN, "address": account.address}
    )
    assert issued.status_code == 200, issued.text
    text = issued.json()["message"]
    return await http.post(
        "/v1/auth/siwe", json={"message": text, "signature": sign_evm(account, text)}
    )


@asynccontextmanager
async def build_trust_world(database_url: str, directory: Path) -> AsyncIterator[TrustWorld]:
    signing = Account.create()
    session_secret = secrets.token_bytes(32)
    env = {
        "XMARGIN_SIGNING_KEY": signing.key.hex(),
        "XMARGIN_SESSION_KEY_S1": session_secret.hex(),
    }
    async with (
        AnvilNode(chain_id=31337) as node,
        AnvilNode(chain_id=ATTESTATION_CHAIN_ID) as verifier_node,
    ):
        verifier = await deploy_attestation_verifier(verifier_node.url, [signing.address])
        deployment = await deploy_demo_world(node.url)
        config_path = write_trust_config(directory, node.url, verifier, signing.address)
        config = load_config(config_path)
        await seed_wallet(
            node.url,
            deployment,
            ALICE,
            native_wei=5 * ETH,
            tokens={"USDC": 20_000 * USDC},
            aave_supply={"WETH": 4 * ETH},
            aave_borrow={"USDC": 3_000 * USDC},
        )
        await seed_wallet(
            node.url,
            deployment,
            BOB,
            aave_supply={"WETH": 10 * ETH},
            aave_borrow={"USDC": 24_000 * USDC},
        )
        await seed_wallet(node.url, deployment, GRACE.address, aave_supply={"WETH": 2 * ETH})
        database = Database(database_url)
        keys: dict[str, str] = {}
        try:
            async with database.session() as session:
                users = {
                    "alice": await add_user(session, "alice"),
                    "bob": await add_user(session, "bob"),
                    "carol": await add_user(session, "carol"),
                    "sam": await add_user(session, "sam"),  # only a Solana wallet: stale
                    "grace": await add_user(session, "grace"),
                }
                await link_wallet(session, users["grace"], "local", GRACE.address)
                await link_wallet(session, users["alice"], "local", ALICE)
                await link_wallet(session, users["bob"], "local", BOB)
                await link_wallet(session, users["sam"], "sol", str(Keypair().pubkey()))
                for name, (scope, rate) in KEYS.items():
                    _, keys[name] = await auth_repo.create_api_key(session, name, scope, rate)
        finally:
            await database.dispose()
        await mine(node.url, 3)
        await poll_and_publish(database_url, config)
        output: list[str] = []
        process, base_url = await asyncio.to_thread(
            start_trust_api, config_path, database_url, env, output
        )
        try:
            yield TrustWorld(
                base_url=base_url,
                database_url=database_url,
                config_path=config_path,
                config=config,
                node=node,
                verifier_node=verifier_node,
                deployment=deployment,
                verifier=verifier,
                users=users,
                keys=keys,
                session_secret=session_secret,
                signing_key=bytes(signing.key),
                env=env,
                output=output,
            )
        finally:
            await asyncio.to_thread(stop_api, process)
