"""Operator commands over the store: users, wallets, reading statuses."""

from __future__ import annotations

from typing import Any

from aggregator.addresses import caip10, normalize_address
from aggregator.bootstrap import open_services
from aggregator.config import LoadedConfig
from aggregator.errors import UserInputError
from aggregator.store import users as user_repo
from aggregator.store.errors import UnknownUser
from aggregator.store.statuses import get_status
from aggregator.store.users import UserRow


async def _user(session: Any, name_or_id: str) -> UserRow:
    user = await user_repo.get_user(
        session, int(name_or_id) if name_or_id.isdigit() else name_or_id
    )
    if user is None:
        raise UnknownUser(f"no user {name_or_id!r} (add it with `xmargin users add`)")
    return user


async def add_user(config: LoadedConfig, name: str) -> int:
    """Create a user; its id. May raise: UserExists, UserInputError (bad name)."""
    if not name.strip() or name.isdigit():
        raise UserInputError(f"user name {name!r}: must be non-empty and not all digits")
    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            return await user_repo.add_user(session, name)


async def list_users(config: LoadedConfig) -> list[str]:
    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            users = await user_repo.list_users(session)
            wallets = await user_repo.wallets_by_chain(session)
    lines = []
    for user in users:
        accounts = [
            caip10(config.chains[chain].caip2, w.address) if chain in config.chains else w.address
            for chain, rows in wallets.items()
            for w in rows
            if w.user_id == user.id
        ]
        lines.append(f"{user.id}\t{user.name}\t{' '.join(accounts) or '-'}")
    return lines


async def link_wallet(config: LoadedConfig, user: str, chain: str, address: str) -> str:
    """Link a wallet after validating the chain and the address; its CAIP-10 id.

    May raise: UserInputError (unknown chain, bad address, unknown user, wallet taken).
    """
    chain_config = config.chains.get(chain)
    if chain_config is None:
        known = ", ".join(sorted(config.chains)) or "none"
        raise UserInputError(f"unknown chain {chain!r} in {config.path} (known: {known})")
    canonical = normalize_address(chain_config.family, address, require_checksum=False)
    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            row = await _user(session, user)
            await user_repo.link_wallet(session, row.id, chain, canonical)
    return caip10(chain_config.caip2, canonical)


async def user_status(config: LoadedConfig, user: str) -> dict[str, Any]:
    """The latest published status document of a user.

    May raise: UserInputError (unknown user, nothing published yet).
    """
    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            row = await _user(session, user)
            record = await get_status(session, row.id)
    if record is None:
        raise UserInputError(f"no status published for {user!r} yet (run `xmargin cycle`)")
    return record.document
