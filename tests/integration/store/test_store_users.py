"""Users, wallets and reference data against the real database."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from store_builders import ALICE_EVM, BOB_EVM, USDC, rows

from aggregator.store.database import Database
from aggregator.store.refs import NATIVE, AssetRef, ChainRef, DeploymentRef, PriceSourceRef
from aggregator.store.repositories import (
    UnknownUser,
    UserExists,
    WalletTaken,
    add_user,
    get_user,
    link_wallet,
    list_users,
    owner_map,
    sync_reference_data,
    unlink_wallet,
    wallet_owner,
    wallets_by_chain,
    wallets_of_user,
)

SOL_WALLET = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


async def test_add_user_returns_ids_and_refuses_duplicate_names(db: Database) -> None:
    async with db.session() as session:
        alice = await add_user(session, "alice")
        bob = await add_user(session, "  bob ")
    assert (alice, bob) == (1, 2)
    with pytest.raises(UserExists, match="'alice' already exists"):
        async with db.session() as session:
            await add_user(session, "alice")
    async with db.session() as session:
        assert [(u.id, u.name) for u in await list_users(session)] == [(1, "alice"), (2, "bob")]
        assert (await get_user(session, "bob")) is not None
        found_by_id = await get_user(session, 1)
        found_by_digits = await get_user(session, "2")
        assert found_by_id is not None and found_by_id.name == "alice"
        assert found_by_digits is not None and found_by_digits.name == "bob"
        assert await get_user(session, "carol") is None
        assert await get_user(session, 99) is None


async def test_a_duplicate_user_does_not_abort_the_surrounding_transaction(db: Database) -> None:
    async with db.session() as session:
        await add_user(session, "alice")
        with pytest.raises(UserExists):
            await add_user(session, "alice")
        carol = await add_user(session, "carol")  # still usable: no aborted transaction
    assert carol == 3  # the refused insert consumed identity 2


async def test_link_wallet_keeps_one_owner_per_chain_and_address(db: Database) -> None:
    async with db.session() as session:
        alice = await add_user(session, "alice")
        bob = await add_user(session, "bob")
        await link_wallet(session, alice, "ethereum", ALICE_EVM, proof="sig-1")
        await link_wallet(session, alice, "ethereum", ALICE_EVM)  # relink: keeps the proof
        await link_wallet(session, alice, "solana", SOL_WALLET)
        await link_wallet(session, bob, "ethereum", BOB_EVM)
        # The same address on another chain is another wallet.
        await link_wallet(session, bob, "arbitrum", ALICE_EVM)
    with pytest.raises(WalletTaken, match=f"ethereum wallet {ALICE_EVM} is already linked"):
        async with db.session() as session:
            await link_wallet(session, bob, "ethereum", ALICE_EVM, proof="stolen")
    with pytest.raises(UnknownUser, match="no user with id 42"):
        async with db.session() as session:
            await link_wallet(session, 42, "ethereum", BOB_EVM)

    async with db.session() as session:
        grouped = await wallets_by_chain(session)
        assert sorted(grouped) == ["arbitrum", "ethereum", "solana"]
        assert owner_map(grouped["ethereum"]) == {ALICE_EVM: alice, BOB_EVM: bob}
        assert owner_map(grouped["arbitrum"]) == {ALICE_EVM: bob}
        alice_eth = next(w for w in grouped["ethereum"] if w.address == ALICE_EVM)
        assert alice_eth.ownership_proof == "sig-1"
        assert alice_eth.verified_at is not None
        assert [w.chain for w in await wallets_of_user(session, alice)] == ["ethereum", "solana"]
        assert await wallet_owner(session, "ethereum", ALICE_EVM) == alice
        assert await unlink_wallet(session, alice, "ethereum", ALICE_EVM) is True
        assert await unlink_wallet(session, alice, "ethereum", ALICE_EVM) is False
        assert await wallet_owner(session, "ethereum", ALICE_EVM) is None


async def test_sync_reference_data_mirrors_config(db: Database) -> None:
    chains = [
        ChainRef("ethereum", "eip155:1", "evm"),
        ChainRef("solana", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "solana"),
    ]
    assets = [AssetRef("ETH", "ETH"), AssetRef("USDC", "USD", stable=True)]
    deployments = [
        DeploymentRef("ETH", "ethereum", NATIVE, 18),
        DeploymentRef("USDC", "ethereum", USDC, 6),
        DeploymentRef(
            "USDC", "solana", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6, "spl_token"
        ),
    ]
    sources = [
        PriceSourceRef("ETH", "ethereum", "chainlink", "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419")
    ]
    async with db.session() as session:
        await sync_reference_data(session, chains, assets, deployments, sources)
    assert await rows(db, "SELECT asset, chain, decimals FROM asset_deployments ORDER BY 1, 2") == [
        {"asset": "ETH", "chain": "ethereum", "decimals": 18},
        {"asset": "USDC", "chain": "ethereum", "decimals": 6},
        {"asset": "USDC", "chain": "solana", "decimals": 6},
    ]

    # Config changes: Solana dropped, USDC's decimals corrected, ETH no longer priced.
    async with db.session() as session:
        await sync_reference_data(
            session,
            chains[:1],
            assets,
            [deployments[0], DeploymentRef("USDC", "ethereum", USDC, 8)],
            [],
        )
    assert await rows(db, "SELECT key FROM chains") == [{"key": "ethereum"}]
    assert await rows(db, "SELECT asset, decimals FROM asset_deployments ORDER BY 1") == [
        {"asset": "ETH", "decimals": 18},
        {"asset": "USDC", "decimals": 8},
    ]
    assert await rows(db, "SELECT * FROM price_sources") == []
    assert await rows(db, "SELECT symbol, stable FROM assets ORDER BY 1") == [
        {"symbol": "ETH", "stable": False},
        {"symbol": "USDC", "stable": True},
    ]


async def test_sync_reference_data_refuses_a_deployment_of_an_unknown_asset(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            await sync_reference_data(
                session,
                [ChainRef("ethereum", "eip155:1", "evm")],
                [],
                [
                    DeploymentRef(
                        "WBTC", "ethereum", "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", 8
                    )
                ],
                [],
            )
    assert await rows(db, "SELECT * FROM chains") == []  # the whole sync rolled back
